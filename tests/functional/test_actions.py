"""Server actions through the public API on the fake driver: pause, suspend, resize, console,
snapshot, user_data; and the internal ImageStore's authentication."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from stratus.imagestore.v1 import imagestore_pb2
from stratus.v1 import flavors_pb2, hosts_pb2, images_pb2, servers_pb2
from tests.functional.test_errors import fails, field_violations
from tests.support.stack import Stack

S = servers_pb2.ServerStatus
FP = grpc.StatusCode.FAILED_PRECONDITION


def boot(stack: Stack, name: str, user_data: bytes = b"", who: str = "admin") -> servers_pb2.Server:
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", user_data=user_data)
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md(who))
    active: servers_pb2.Server = stack.wait_for_server(created.id, {"ACTIVE"}, who=who)
    return active


def delete(stack: Stack, server_id: str) -> None:
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md())
    stack.wait_gone(server_id)


@pytest.fixture
def server(stack: Stack) -> Iterator[servers_pb2.Server]:
    s = boot(stack, f"act-{uuid.uuid4().hex[:6]}")
    yield s
    delete(stack, s.id)


def act(stack: Stack, method: str, server_id: str, **fields: Any) -> servers_pb2.Server:
    request = getattr(servers_pb2, f"{method}Request")(id=server_id, **fields)
    reply: servers_pb2.Server = getattr(stack.servers, method)(request, metadata=stack.md())
    return reply


def eventually(what: str, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Some values settle just after the task clears (the claim after a confirm or revert)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g}s")
        time.sleep(0.05)


def test_pause_unpause_suspend_resume(stack: Stack, server: servers_pb2.Server) -> None:
    P = servers_pb2.PowerState
    for method, status, power in (
        ("PauseServer", "PAUSED", P.POWER_STATE_PAUSED),
        ("UnpauseServer", "ACTIVE", P.POWER_STATE_RUNNING),
        ("SuspendServer", "SUSPENDED", P.POWER_STATE_SUSPENDED),
        ("ResumeServer", "ACTIVE", P.POWER_STATE_RUNNING),
    ):
        started = act(stack, method, server.id)
        assert started.task_state != servers_pb2.TaskState.TASK_STATE_UNSPECIFIED
        done = stack.wait_for_server(server.id, {status})
        assert done.power_state == power and not done.HasField("fault"), method


def test_actions_in_the_wrong_state_are_failed_precondition(stack: Stack, server: servers_pb2.Server) -> None:
    for method in ("UnpauseServer", "ResumeServer", "ConfirmServerResize", "RevertServerResize", "StartServer"):
        err = fails(lambda m=method: act(stack, m, server.id), FP)  # type: ignore[misc]
        assert "ACTIVE" in (err.details() or ""), method
    act(stack, "PauseServer", server.id)
    stack.wait_for_server(server.id, {"PAUSED"})
    for method in ("ResumeServer", "PauseServer", "SuspendServer", "StopServer"):
        err = fails(lambda m=method: act(stack, m, server.id), FP)  # type: ignore[misc]
        assert "PAUSED" in (err.details() or ""), method
    fails(lambda: act(stack, "ResizeServer", server.id, flavor_id="m1.small"), FP)


def host_use(stack: Stack, host: str) -> tuple[int, int, int]:
    h = stack.hosts.GetHost(hosts_pb2.GetHostRequest(host=host), metadata=stack.md())
    return h.vcpus_used, h.ram_mb_used, h.disk_gb_used


@pytest.fixture(scope="module")
def wide(stack: Stack) -> flavors_pb2.Flavor:
    """More vCPUs, less RAM than m1.tiny: while a resize waits, the host holds the max of each."""
    spec = flavors_pb2.Flavor(name=f"wide-{uuid.uuid4().hex[:6]}", vcpus=2, ram_mb=64, disk_gb=1)
    flavor: flavors_pb2.Flavor = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=spec),
                                                            metadata=stack.md())  # fmt: skip
    return flavor


def resize_to_wide(stack: Stack, server: servers_pb2.Server, wide: flavors_pb2.Flavor) -> tuple[int, int, int]:
    """Resizes ``server`` to ``wide``; returns its host's usage before."""
    v, r, d = host_use(stack, server.host)
    started = act(stack, "ResizeServer", server.id, flavor_id=wide.name)
    assert started.status == S.SERVER_STATUS_RESIZE and started.flavor_id == wide.id
    assert host_use(stack, server.host) == (v + 1, r, d + 1)  # max(1, 2) vCPUs, max(128, 64) MiB, both disks
    waiting = stack.wait_for_server(server.id, {"VERIFY_RESIZE"})
    assert waiting.flavor_id == wide.id and waiting.resources.vcpus == 2 and waiting.resources.ram_mb == 64
    return v, r, d


def test_resize_then_confirm(stack: Stack, server: servers_pb2.Server, wide: flavors_pb2.Flavor) -> None:
    v, r, d = resize_to_wide(stack, server, wide)
    act(stack, "ConfirmServerResize", server.id)
    done = stack.wait_for_server(server.id, {"ACTIVE"})
    assert done.flavor_id == wide.id and not done.HasField("fault")
    eventually("the claim shrinking to the new size", lambda: host_use(stack, server.host) == (v + 1, r - 64, d))


def test_resize_then_revert(stack: Stack, server: servers_pb2.Server, wide: flavors_pb2.Flavor) -> None:
    v, r, d = resize_to_wide(stack, server, wide)
    reverting = act(stack, "RevertServerResize", server.id)
    assert reverting.status == S.SERVER_STATUS_REVERT_RESIZE
    done = stack.wait_for_server(server.id, {"ACTIVE"})
    assert done.flavor_id == server.flavor_id and done.resources == server.resources
    eventually("the claim going back to the old size", lambda: host_use(stack, server.host) == (v, r, d))


def test_resize_refusals(stack: Stack, server: servers_pb2.Server) -> None:
    err = fails(lambda: act(stack, "ResizeServer", server.id, flavor_id="m1.tiny"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "flavor_id" in field_violations(err)
    err = fails(lambda: act(stack, "ResizeServer", server.id, flavor_id="no-such"), grpc.StatusCode.NOT_FOUND)
    assert "flavor_id" in field_violations(err)
    spec = flavors_pb2.Flavor(name=f"huge-{uuid.uuid4().hex[:6]}", vcpus=1, ram_mb=9000, disk_gb=1)
    huge = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=spec), metadata=stack.md())
    before = host_use(stack, server.host)
    fails(lambda: act(stack, "ResizeServer", server.id, flavor_id=huge.id), grpc.StatusCode.RESOURCE_EXHAUSTED)
    after = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=stack.md())
    assert (after.status, after.flavor_id, host_use(stack, server.host)) == (S.SERVER_STATUS_ACTIVE,
                                                                            server.flavor_id, before)  # fmt: skip


def test_user_data_is_in_get_and_not_in_lists(stack: Stack) -> None:
    data = b"#!/bin/sh\necho hello\n" + bytes(range(256)) * 200
    s = boot(stack, "with-user-data", user_data=data, who="demo")
    try:
        got = stack.servers.GetServer(servers_pb2.GetServerRequest(id=s.id), metadata=stack.md("demo"))
        assert got.user_data == data
        listed = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md("demo")).servers
        mine = [x for x in listed if x.id == s.id]
        assert mine and mine[0].user_data == b""
        one = stack.servers.WatchServers(servers_pb2.WatchServersRequest(id=s.id), metadata=stack.md("demo"))
        assert next(iter(one)).server.user_data == data  # the watch of one server is like GetServer
        one.cancel()
    finally:
        delete(stack, s.id)


def test_user_data_over_64_kib_is_refused(stack: Stack) -> None:
    spec = servers_pb2.Server(name="too-much", flavor_id="m1.tiny", image_id="tiny", user_data=b"x" * (65536 + 1))
    err = fails(lambda: stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md()),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "server.user_data" in field_violations(err)


def test_console_output(stack: Stack, server: servers_pb2.Server) -> None:
    request = servers_pb2.GetServerConsoleOutputRequest(id=server.id, lines=10)
    reply = stack.servers.GetServerConsoleOutput(request, metadata=stack.md())
    assert isinstance(reply.output, str)
    bad = servers_pb2.GetServerConsoleOutputRequest(id=server.id, lines=10001)
    err = fails(lambda: stack.servers.GetServerConsoleOutput(bad, metadata=stack.md()),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "lines" in field_violations(err)


def test_snapshot_saves_an_active_image(stack: Stack, server: servers_pb2.Server) -> None:
    request = servers_pb2.SnapshotServerRequest(id=server.id, image_name="snap")
    image = stack.servers.SnapshotServer(request, metadata=stack.md())
    assert image.status == images_pb2.ImageStatus.IMAGE_STATUS_SAVING and image.disk_format == "qcow2"
    deadline = time.monotonic() + 60
    while image.status != images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
        assert time.monotonic() < deadline, f"image still {image.status}:\n{stack.log_tail()}"
        time.sleep(0.1)
        image = stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=stack.md())
    assert image.size_bytes > 0 and len(image.checksum) == 64 and image.owner_project_id == "admin"
    done = stack.wait_for_server(server.id, {"ACTIVE"})
    assert not done.HasField("fault")
    stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=stack.md())


def read_image(stack: Stack, who: str | None) -> list[imagestore_pb2.ReadImageResponse]:
    tiny = next(i for i in stack.images.ListImages(images_pb2.ListImagesRequest(), metadata=stack.md()).images
                if i.name == "tiny")  # fmt: skip
    metadata = stack.md(who) if who else None
    return list(stack.image_store.ReadImage(imagestore_pb2.ReadImageRequest(image_id=tiny.id), metadata=metadata))


def test_the_image_store_is_for_the_service_token_only(stack: Stack) -> None:
    for who in ("admin", "demo"):
        fails(lambda w=who: read_image(stack, w), grpc.StatusCode.PERMISSION_DENIED)  # type: ignore[misc]
    fails(lambda: read_image(stack, None), grpc.StatusCode.UNAUTHENTICATED)
    messages = read_image(stack, "service")
    assert messages[0].image.name == "tiny"
    assert sum(len(m.chunk) for m in messages[1:]) == messages[0].image.size_bytes

"""Images know their minimum, on the libvirt driver, as the issue's black-box check does: a snapshot
of a server resized from m1.tiny to m1.small holds a 20 GiB disk and needs m1.small's disk, so a
create with m1.tiny is refused at once with INVALID_ARGUMENT naming the flavor and both sizes
(nothing scheduled, no domain), and one with m1.small boots from it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stratus.v1 import images_pb2, servers_pb2
from tests.e2e.test_stack_libvirt import NAME_LINE, act, console, create, disk_of
from tests.functional.test_errors import error_reason, field_violations
from tests.support.domains import remove_domains_under
from tests.support.stack import Stack, start_stack

GiB = 1024**3


@pytest.fixture(scope="module")
def stack(libvirtd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("minimums")), "--driver", "libvirt",
                    env={"STRATUS_SHUTDOWN_TIMEOUT_S": "5"})  # fmt: skip
    yield s
    code = s.stop()
    leftovers = remove_domains_under(s.state_dir)
    assert code == 0, s.log_tail()
    assert not leftovers, f"domains left behind: {leftovers}"


def saved(stack: Stack, image: images_pb2.Image) -> images_pb2.Image:
    deadline = time.monotonic() + 120
    while image.status != images_pb2.IMAGE_STATUS_ACTIVE:
        assert time.monotonic() < deadline, f"snapshot stuck in {images_pb2.ImageStatus.Name(image.status)}"
        time.sleep(0.2)
        image = stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=stack.md())
    return image


def create_with(stack: Stack, name: str, flavor: str, image_id: str) -> servers_pb2.Server:
    spec = servers_pb2.Server(name=name, flavor_id=flavor, image_id=image_id)
    server: servers_pb2.Server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec),
                                                            metadata=stack.md())  # fmt: skip
    return server


def test_a_snapshot_of_a_resized_server_needs_the_new_flavor(stack: Stack) -> None:
    server = create(stack, "grown")
    ids = [server.id]
    try:
        console(stack, server.id, "stratus-guest: ready")
        act(stack, "ResizeServer", server.id, "VERIFY_RESIZE", flavor_id="m1.small")
        act(stack, "ConfirmServerResize", server.id, "ACTIVE")
        request = servers_pb2.SnapshotServerRequest(id=server.id, image_name="grown-snap")
        image = saved(stack, stack.servers.SnapshotServer(request, metadata=stack.md()))
        assert (image.min_disk_gb, image.virtual_size_bytes) == (20, 20 * GiB)  # m1.small's disk, grown to it

        with pytest.raises(grpc.RpcError) as info:
            create_with(stack, "too-small", "m1.tiny", image.id)
        err = info.value
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert error_reason(err) == "FLAVOR_TOO_SMALL"
        why = field_violations(err)["server.flavor_id"]
        assert "flavor m1.tiny has 1 GB of disk; image grown-snap needs at least 20 GB" in why, why
        listed = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md()).servers
        assert "too-small" not in {s.name for s in listed}  # refused before anything was written

        clone = create_with(stack, "right-size", "m1.small", image.id)
        ids.append(clone.id)
        booted = stack.wait_for_server(clone.id, {"ACTIVE"}, timeout_s=120)
        assert not booted.HasField("fault")
        assert f"{NAME_LINE}right-size" in console(stack, clone.id, NAME_LINE)
        info_json = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk_of(clone.id))],
                                   capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert json.loads(info_json)["virtual-size"] == 20 * GiB
    finally:
        for sid in ids:
            stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
        for sid in ids:
            stack.wait_gone(sid)

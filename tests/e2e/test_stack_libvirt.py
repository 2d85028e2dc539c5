"""A whole stack with the libvirt driver, used through the public API as a user would, and the
real domain looked at with virsh and qemu-img, as the issue's black-box check does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stratus.v1 import images_pb2, servers_pb2
from tests.support.domains import remove_domains_under
from tests.support.stack import Stack, start_stack

S = servers_pb2.ServerStatus
P = servers_pb2.PowerState
NAME_LINE = "stratus-guest: name="


@pytest.fixture(scope="module")
def stack(libvirtd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # ACPI shutdowns of a guest that is still booting wait this long before the domain is destroyed.
    env = {"STRATUS_SHUTDOWN_TIMEOUT_S": "5"}
    s = start_stack(Path(tmp_path_factory.mktemp("libvirt")), "--driver", "libvirt", env=env)
    yield s
    code = s.stop()
    leftovers = remove_domains_under(s.state_dir)  # whatever a failed test left behind
    assert code == 0, s.log_tail()
    assert not leftovers, f"domains left behind: {leftovers}"


def virsh(*args: str) -> str:
    done = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def domstate(server_id: str) -> str:
    return virsh("domstate", server_id).strip()


def create(stack: Stack, name: str, user_data: bytes = b"") -> servers_pb2.Server:
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", user_data=user_data)
    server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    active: servers_pb2.Server = stack.wait_for_server(server.id, {"ACTIVE"}, timeout_s=120)
    return active


def console(stack: Stack, server_id: str, text: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    request = servers_pb2.GetServerConsoleOutputRequest(id=server_id)
    while True:
        output: str = stack.servers.GetServerConsoleOutput(request, metadata=stack.md()).output
        if text in output:
            return output
        assert time.monotonic() < deadline, f"{text!r} never appeared on the console:\n{output}"
        time.sleep(0.2)


def act(stack: Stack, method: str, server_id: str, want: str, **fields: object) -> servers_pb2.Server:
    request_cls = getattr(servers_pb2, f"{method}Request")
    getattr(stack.servers, method)(request_cls(id=server_id, **fields), metadata=stack.md())
    settled: servers_pb2.Server = stack.wait_for_server(server_id, {want}, timeout_s=90)
    return settled


def disk_of(server_id: str) -> Path:
    xml = virsh("dumpxml", server_id)
    start = xml.index("<source file='") + len("<source file='")
    return Path(xml[start : xml.index("'", start)])


def test_a_server_runs_from_an_overlay_and_prints_its_user_data(stack: Stack) -> None:
    server = create(stack, "hello-vm", b"user data for the black-box check\n")
    assert server.power_state == P.POWER_STATE_RUNNING
    assert domstate(server.id) == "running"
    output = console(stack, server.id, "stratus-guest: ready")
    assert f"{NAME_LINE}hello-vm uuid={server.id}" in output
    assert "user data for the black-box check" in output
    disk = disk_of(server.id)
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)],
                                     capture_output=True, check=True).stdout)  # fmt: skip
    assert info["format"] == "qcow2"
    assert "image-cache" in info["backing-filename"]
    assert info["virtual-size"] == 1 * 2**30
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)
    assert "failed to get domain" in virsh("domstate", server.id)
    assert not disk.parent.exists()


def test_power_actions_show_in_the_domain(stack: Stack) -> None:
    server = create(stack, "power-vm")
    console(stack, server.id, "stratus-guest: ready")
    assert act(stack, "StopServer", server.id, "SHUTOFF").power_state == P.POWER_STATE_SHUTDOWN
    assert domstate(server.id) == "shut off"
    act(stack, "StartServer", server.id, "ACTIVE")
    assert domstate(server.id) == "running"
    act(stack, "RebootServer", server.id, "ACTIVE", type=servers_pb2.REBOOT_TYPE_HARD)
    assert domstate(server.id) == "running"
    assert act(stack, "PauseServer", server.id, "PAUSED").power_state == P.POWER_STATE_PAUSED
    assert domstate(server.id) == "paused"
    act(stack, "UnpauseServer", server.id, "ACTIVE")
    assert act(stack, "SuspendServer", server.id, "SUSPENDED").power_state == P.POWER_STATE_SUSPENDED
    assert domstate(server.id) == "shut off"
    act(stack, "ResumeServer", server.id, "ACTIVE")
    assert domstate(server.id) == "running"
    with pytest.raises(grpc.RpcError) as refused:
        act(stack, "ResumeServer", server.id, "ACTIVE")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)


def test_a_guest_that_powers_itself_off_is_shutoff_within_seconds(stack: Stack) -> None:
    server = create(stack, "selfstop-vm")
    virsh("destroy", server.id)  # as if the guest powered off (or crashed) by itself
    deadline = time.monotonic() + 5
    while True:
        current = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=stack.md())
        if current.status == S.SERVER_STATUS_SHUTOFF:
            break
        assert time.monotonic() < deadline, f"still {S.Name(current.status)}"
        time.sleep(0.05)
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)


def test_resize_revert_and_confirm_on_the_same_host(stack: Stack) -> None:
    server = create(stack, "resize-vm")
    console(stack, server.id, "stratus-guest: ready")
    resized = act(stack, "ResizeServer", server.id, "VERIFY_RESIZE", flavor_id="m1.small")
    assert resized.flavor_id != server.flavor_id
    assert str(resized.resources.ram_mb * 1024) in virsh("dominfo", server.id)
    reverted = act(stack, "RevertServerResize", server.id, "ACTIVE")
    assert reverted.flavor_id == server.flavor_id
    assert str(server.resources.ram_mb * 1024) in virsh("dominfo", server.id)
    act(stack, "ResizeServer", server.id, "VERIFY_RESIZE", flavor_id="m1.small")
    confirmed = act(stack, "ConfirmServerResize", server.id, "ACTIVE")
    assert confirmed.flavor_id == resized.flavor_id
    assert not (disk_of(server.id).parent / "disk.resize-backup").exists()
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)


def test_a_snapshot_becomes_an_image_that_boots(stack: Stack) -> None:
    server = create(stack, "snap-src")
    image = stack.servers.SnapshotServer(servers_pb2.SnapshotServerRequest(id=server.id, image_name="snap-1"),
                                         metadata=stack.md())  # fmt: skip
    assert image.status == images_pb2.IMAGE_STATUS_SAVING
    deadline = time.monotonic() + 60
    while image.status != images_pb2.IMAGE_STATUS_ACTIVE:
        assert time.monotonic() < deadline, f"snapshot stuck in {images_pb2.ImageStatus.Name(image.status)}"
        time.sleep(0.2)
        image = stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=stack.md())
    spec = servers_pb2.Server(name="from-snap", flavor_id="m1.tiny", image_id=image.id)
    clone = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    stack.wait_for_server(clone.id, {"ACTIVE"}, timeout_s=120)
    assert f"{NAME_LINE}from-snap" in console(stack, clone.id, NAME_LINE)
    for sid in (server.id, clone.id):
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
        stack.wait_gone(sid)


def test_a_compute_killed_mid_action_comes_back_and_nothing_stays_in_a_task(stack: Stack) -> None:
    server = create(stack, "restart-vm")
    compute = next(s for s in stack.reload()["services"] if s["binary"] == "compute")
    stack.servers.StopServer(servers_pb2.StopServerRequest(id=server.id), metadata=stack.md())
    os.kill(compute["pid"], signal.SIGKILL)  # the launcher restarts it; the stop's call fails
    settled = stack.wait_for_server(server.id, {"ACTIVE", "SHUTOFF"}, timeout_s=90)
    assert settled.task_state == servers_pb2.TASK_STATE_UNSPECIFIED
    compute_back(stack, compute["pid"])
    # Whatever the stop managed, the record follows the real domain once the compute is back.
    deadline = time.monotonic() + 60
    while True:
        current = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=stack.md())
        running = domstate(server.id) == "running"
        if (current.power_state == P.POWER_STATE_RUNNING) == running:
            break
        assert time.monotonic() < deadline, f"record {current} vs domain {domstate(server.id)}"
        time.sleep(0.2)
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)
    assert "failed to get domain" in virsh("domstate", server.id)


def compute_back(stack: Stack, old_pid: int, timeout_s: float = 60.0) -> None:
    """Waits until the launcher's restarted compute has registered again."""
    deadline = time.monotonic() + timeout_s
    while True:
        entry = next(s for s in stack.reload()["services"] if s["binary"] == "compute")
        if entry["pid"] != old_pid and entry.get("endpoint"):
            return
        assert time.monotonic() < deadline, f"the compute did not come back:\n{stack.log_tail()}"
        time.sleep(0.2)


def test_a_corrupt_image_fails_the_build_at_once_with_a_clear_fault(stack: Stack) -> None:
    """The api's upload checks pass it (it starts with the qcow2 magic); qemu-img on the compute
    finds it is no qcow2: the build fails with that, on the first host, without rescheduling."""

    def upload() -> Iterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="corrupt", disk_format="qcow2"))
        yield images_pb2.UploadImageRequest(chunk=b"QFI\xfb" + b"\x5a" * (1024 * 1024))

    image = stack.images.UploadImage(upload(), metadata=stack.md())
    spec = servers_pb2.Server(name="corrupt-vm", flavor_id="m1.tiny", image_id=image.id)
    server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    failed = stack.wait_for_server(server.id, {"ERROR"}, timeout_s=60)
    assert f"image {image.id} (corrupt)" in failed.fault.message, failed.fault
    assert failed.fault.metadata["last_reason"] == "IMAGE_UNUSABLE"
    assert failed.fault.metadata["attempts"] == "1"
    assert "failed to get domain" in virsh("domstate", server.id)
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)

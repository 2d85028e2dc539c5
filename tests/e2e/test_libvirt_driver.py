"""The libvirt driver against the real libvirtd: the tiny guest boots from a qcow2 overlay on the
cached base, reads its config drive, and every action shows in the real domain."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import uuid
from pathlib import Path

import libvirt
import pytest

from services.compute.drivers.base import DriverError, ImageError, InstanceSpec
from services.compute.drivers.libvirt.driver import LibvirtDriver
from services.compute.drivers.libvirt.power import event_power_state
from services.compute.drivers.libvirt.virt_type import guest_prints, kvm_worth_probing
from stratus.v1 import servers_pb2
from tests.support.file_images import FileImageService

pytestmark = pytest.mark.asyncio(loop_scope="session")
P = servers_pb2.PowerState
READY = "stratus-guest: ready"


def new_spec(name: str = "web-1", user_data: bytes = b"hello from user data\n") -> InstanceSpec:
    return InstanceSpec(instance_id=str(uuid.uuid4()), name=name, image_id="tiny", user_data=user_data,
                        vcpus=1, ram_mb=128, disk_gb=1)  # fmt: skip


async def console_shows(driver: LibvirtDriver, instance_id: str, text: str, timeout_s: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        output = await driver.console_output(instance_id, 0)
        if text in output:
            return output
        assert asyncio.get_running_loop().time() < deadline, f"{text!r} never appeared:\n{output}"
        await asyncio.sleep(0.1)


def qemu_img_info(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, check=True)
    info: dict[str, object] = json.loads(out.stdout)
    return info


def virsh(*args: str) -> str:
    out = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=False)
    return out.stdout + out.stderr


async def test_a_guest_boots_from_an_overlay_and_prints_its_name_and_user_data(driver: LibvirtDriver) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    output = await console_shows(driver, spec.instance_id, READY)
    assert f"stratus-guest: name=web-1 uuid={spec.instance_id}" in output
    assert "hello from user data" in output
    info = qemu_img_info(driver.files(spec.instance_id).disk)
    assert info["format"] == "qcow2"
    assert str(info["backing-filename"]).startswith(str(driver.cache.root))
    assert info["virtual-size"] == 1 * 2**30
    assert "running" in virsh("domstate", spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING
    assert await driver.list_instances() == [spec.instance_id]


async def test_delete_leaves_nothing(driver: LibvirtDriver) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    await driver.destroy(spec.instance_id)
    assert await driver.list_instances() == []
    assert not driver.files(spec.instance_id).root.exists()
    assert "failed to get domain" in virsh("domstate", spec.instance_id)
    await driver.destroy(spec.instance_id)  # nothing to destroy is no error


async def test_stop_start_and_both_reboots(driver: LibvirtDriver) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    await console_shows(driver, spec.instance_id, READY)
    await driver.power_off(spec.instance_id, 10.0)
    assert "shut off" in virsh("domstate", spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_SHUTDOWN
    await driver.power_on(spec.instance_id)
    assert "running" in virsh("domstate", spec.instance_id)
    boots = (await console_shows(driver, spec.instance_id, READY)).count(READY)
    await driver.reboot(spec.instance_id, hard=True)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING
    output = await driver.console_output(spec.instance_id, 0)
    deadline = asyncio.get_running_loop().time() + 30
    while output.count(READY) <= boots:
        assert asyncio.get_running_loop().time() < deadline, "no boot after the hard reboot"
        await asyncio.sleep(0.1)
        output = await driver.console_output(spec.instance_id, 0)
    await driver.reboot(spec.instance_id, hard=False)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING


async def test_pause_suspend_and_their_reverse(driver: LibvirtDriver) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    await driver.pause(spec.instance_id)
    assert "paused" in virsh("domstate", spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_PAUSED
    await driver.unpause(spec.instance_id)
    await driver.suspend(spec.instance_id)
    assert "shut off" in virsh("domstate", spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_SUSPENDED
    await driver.resume(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING
    with pytest.raises(DriverError, match="no saved memory"):
        await driver.resume(spec.instance_id)


async def test_resize_then_revert_then_resize_then_confirm(driver: LibvirtDriver) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    await console_shows(driver, spec.instance_id, READY)  # so the guest can answer the ACPI shutdown
    files = driver.files(spec.instance_id)
    bigger = dataclasses.replace(spec, ram_mb=192, disk_gb=2)
    await driver.resize(bigger)
    assert "196608 KiB" in virsh("dominfo", spec.instance_id)
    assert qemu_img_info(files.disk)["virtual-size"] == 2 * 2**30
    assert files.resize_disk.exists() and await driver.resize_kept(spec.instance_id)
    await driver.revert_resize(spec.instance_id)
    assert "131072 KiB" in virsh("dominfo", spec.instance_id)
    assert qemu_img_info(files.disk)["virtual-size"] == 1 * 2**30
    assert not files.resize_disk.exists()
    await driver.resize(bigger)
    await driver.confirm_resize(spec.instance_id)
    assert "196608 KiB" in virsh("dominfo", spec.instance_id)
    assert not files.resize_disk.exists() and not files.resize_xml.exists()
    assert not await driver.resize_kept(spec.instance_id)
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING


async def test_a_snapshot_is_a_standalone_bootable_image(driver: LibvirtDriver, tmp_path: Path) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    await driver.snapshot(spec.instance_id, "snap-1")
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING
    images = driver.images
    assert isinstance(images, FileImageService)
    snap = images.uploads["snap-1"]
    assert "backing-filename" not in qemu_img_info(snap)
    images.add("snap-1", snap, "qcow2")
    clone = dataclasses.replace(new_spec(name="clone"), image_id="snap-1")
    await driver.spawn(clone)
    assert "stratus-guest: name=clone" in await console_shows(driver, clone.instance_id, READY)


async def test_a_failed_spawn_leaves_nothing(driver: LibvirtDriver) -> None:
    """Fails after the overlay and config drive exist (the XML cannot be made); the destroy the
    compute then runs removes every file."""
    spec = new_spec()
    driver.virt_type = "bogus"
    try:
        with pytest.raises(DriverError, match="virt type"):
            await driver.spawn(spec)
    finally:
        driver.virt_type = "qemu"
    files = driver.files(spec.instance_id)
    assert files.disk.exists() and files.config_drive.exists()  # half made, as the driver's contract allows
    await driver.destroy(spec.instance_id)
    assert not files.root.exists()
    assert await driver.list_instances() == []
    missing = dataclasses.replace(new_spec(), image_id="missing")
    with pytest.raises(ImageError):
        await driver.spawn(missing)
    await driver.destroy(missing.instance_id)
    assert not driver.files(missing.instance_id).root.exists()


async def test_a_wrong_format_image_fails_the_build_with_a_clear_error(driver: LibvirtDriver, tmp_path: Path) -> None:
    raw = tmp_path / "raw.img"
    raw.write_bytes(b"\0" * 1024 * 1024)
    images = driver.images
    assert isinstance(images, FileImageService)
    images.add("liar", raw, "qcow2")
    with pytest.raises(ImageError, match="raw"):
        await driver.spawn(dataclasses.replace(new_spec(), image_id="liar"))


async def test_another_hosts_domains_are_not_touched(driver: LibvirtDriver, tmp_path: Path) -> None:
    spec = new_spec()
    await driver.spawn(spec)
    other = LibvirtDriver(driver.settings, "someone-else", tmp_path / "other", driver.images, 5.0)
    await other.start(lambda _i, _p: None)
    try:
        assert await other.list_instances() == []
        assert await other.get_power_state(spec.instance_id) == P.POWER_STATE_NOSTATE
        await other.destroy(spec.instance_id)
    finally:
        await other.close()
    assert await driver.get_power_state(spec.instance_id) == P.POWER_STATE_RUNNING


async def test_a_guest_that_powers_off_by_itself_is_reported(driver: LibvirtDriver) -> None:
    seen: list[tuple[str, int]] = []
    driver._on_power_event = lambda i, p: seen.append((i, p))
    spec = new_spec()
    await driver.spawn(spec)
    dom = await driver.lv.lookup(spec.instance_id)
    await driver.lv.call("destroy", dom.destroy)
    deadline = asyncio.get_running_loop().time() + 5
    while (spec.instance_id, P.POWER_STATE_SHUTDOWN) not in seen:
        assert asyncio.get_running_loop().time() < deadline, f"no event: {seen}"
        await asyncio.sleep(0.02)
    assert event_power_state(libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED) == (
        P.POWER_STATE_CRASHED
    )


async def test_the_virt_type_probe_sees_a_guest_print(driver: LibvirtDriver) -> None:
    """The probe behind virt_type=auto: QEMU always prints; auto chose KVM only where the CPU
    offers it and a KVM guest printed, else QEMU (these VMs: no vmx/svm)."""
    assert await guest_prints(driver.lv, "qemu")
    if kvm_worth_probing() and await guest_prints(driver.lv, "kvm"):
        assert driver.virt_type == "kvm"
    else:
        assert driver.virt_type == "qemu"

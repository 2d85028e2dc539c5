"""The fake virt driver and the driver registry: pure, no I/O."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.compute.drivers.base import (
    DriverError,
    ImageError,
    ImageInfo,
    ImageService,
    InstanceNotFound,
    InstanceSpec,
)
from services.compute.drivers.fake.driver import FAIL_SPAWN_MESSAGE, FakeDriver
from services.compute.drivers.fake.host import FakeHostSize, parse_fake_host
from services.compute.drivers.registry import load_driver, names
from services.compute.drivers.timed_calls import CallTimeout
from services.compute.settings import ComputeSettings
from stratus.v1 import servers_pb2

P = servers_pb2.PowerState
SIZE = FakeHostSize(vcpus=4, ram_mb=8192, disk_gb=100)


def spec(instance_id: str = "i-1") -> InstanceSpec:
    return InstanceSpec(instance_id=instance_id, name="vm", vcpus=1, ram_mb=512, disk_gb=1, image_id="img")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vcpus=16,ram_mb=32768,disk_gb=1000", FakeHostSize(16, 32768, 1000)),
        ("disk_gb=1,vcpus=2,ram_mb=3", FakeHostSize(2, 3, 1)),
        (" vcpus = 2 , ram_mb=64 ,disk_gb= 1 ", FakeHostSize(2, 64, 1)),
    ],
)
def test_parse_fake_host_accepts(text: str, expected: FakeHostSize) -> None:
    assert parse_fake_host(text) == expected


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "''"),
        ("vcpus=2,ram_mb=64", "missing disk_gb"),
        ("vcpus=2,ram_mb=64,disk_gb=1,cpus=3", "'cpus'"),
        ("vcpus=2,ram_mb=64,disk_gb", "'disk_gb' is not name=value"),
        ("vcpus=2,,ram_mb=64,disk_gb=1", "'' is not name=value"),
        ("=2,ram_mb=64,disk_gb=1", "'=2' is not name=value"),
        ("vcpus=two,ram_mb=64,disk_gb=1", "'two' is not a whole number"),
        ("vcpus=1.5,ram_mb=64,disk_gb=1", "'1.5' is not a whole number"),
        ("vcpus=0,ram_mb=64,disk_gb=1", "vcpus must be positive"),
        ("vcpus=2,ram_mb=-64,disk_gb=1", "ram_mb must be positive"),
        ("vcpus=2,vcpus=3,ram_mb=64,disk_gb=1", "'vcpus' given twice"),
    ],
)
def test_parse_fake_host_names_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(ValueError, match="fake host") as exc:
        parse_fake_host(text)
    assert names in str(exc.value)


def test_settings_refuse_a_bad_fake_host() -> None:
    with pytest.raises(ValidationError, match="unknown field 'ram'"):
        ComputeSettings(host="c1", fake_host="vcpus=2,ram=64,disk_gb=1")


async def test_capabilities_report_the_configured_size() -> None:
    info = await FakeDriver(SIZE).capabilities()
    assert (info.vcpus, info.ram_mb, info.disk_gb) == (4, 8192, 100)
    assert info.hypervisor_type == "fake"
    assert info.hypervisor_version > 0
    assert info.cpu_model


async def test_spawn_runs_the_domain_and_again_is_harmless() -> None:
    driver = FakeDriver(SIZE)
    for _ in range(2):
        await driver.spawn(spec())
        assert await driver.list_instances() == ["i-1"]
        assert await driver.get_power_state("i-1") == P.POWER_STATE_RUNNING


async def test_destroy_is_idempotent() -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec("i-1"))
    await driver.spawn(spec("i-2"))
    for _ in range(2):
        await driver.destroy("i-1")
        assert await driver.list_instances() == ["i-2"]
        assert await driver.get_power_state("i-1") == P.POWER_STATE_NOSTATE
    await driver.destroy("never-existed")


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        (["off"], P.POWER_STATE_SHUTDOWN),
        (["off", "off"], P.POWER_STATE_SHUTDOWN),
        (["on"], P.POWER_STATE_RUNNING),
        (["off", "on", "on"], P.POWER_STATE_RUNNING),
        (["soft"], P.POWER_STATE_RUNNING),
        (["off", "hard"], P.POWER_STATE_RUNNING),
        (["hard", "hard"], P.POWER_STATE_RUNNING),
    ],
)
async def test_power_operations(ops: list[str], expected: int) -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec())
    for op in ops:
        if op == "off":
            await driver.power_off("i-1")
        elif op == "on":
            await driver.power_on("i-1")
        else:
            await driver.reboot("i-1", hard=op == "hard")
    assert await driver.get_power_state("i-1") == expected


async def test_soft_reboot_needs_a_running_domain() -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec())
    await driver.power_off("i-1")
    with pytest.raises(DriverError, match="not running"):
        await driver.reboot("i-1", hard=False)
    assert await driver.get_power_state("i-1") == P.POWER_STATE_SHUTDOWN


@pytest.mark.parametrize("op", ["power_off", "power_on", "soft", "hard"])
async def test_power_operations_on_an_absent_domain_raise_instance_not_found(op: str) -> None:
    driver = FakeDriver(SIZE)
    with pytest.raises(InstanceNotFound, match="absent"):
        if op == "power_off":
            await driver.power_off("absent")
        elif op == "power_on":
            await driver.power_on("absent")
        else:
            await driver.reboot("absent", hard=op == "hard")


async def test_fail_spawn_raises_and_leaves_a_defined_domain_to_clean_up() -> None:
    driver = FakeDriver(SIZE, fail_spawn=True)
    with pytest.raises(DriverError, match=FAIL_SPAWN_MESSAGE):
        await driver.spawn(spec())
    assert await driver.list_instances() == ["i-1"]
    assert await driver.get_power_state("i-1") == P.POWER_STATE_SHUTDOWN
    await driver.destroy("i-1")
    assert await driver.list_instances() == []


class NoImages(ImageService):
    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        raise ImageError("no images here")

    async def upload(self, image_id: str, src: Path) -> None:
        raise ImageError("no images here")


def test_load_driver_builds_the_fake_from_settings() -> None:
    settings = ComputeSettings(host="c1", fake_host="vcpus=2,ram_mb=64,disk_gb=1", fake_fail_spawn=True)
    driver = load_driver(settings, NoImages())
    assert isinstance(driver, FakeDriver)
    assert driver.size == FakeHostSize(2, 64, 1)
    assert driver.fail_spawn


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("vmware", "unknown virt driver 'vmware'; known drivers: fake, libvirt"),
        ("", "unknown virt driver ''; known drivers: fake, libvirt"),
    ],
)
def test_load_driver_refuses_names_without_a_driver(name: str, message: str) -> None:
    unchecked = ComputeSettings(host="c1").model_copy(update={"driver": name})
    with pytest.raises(ValueError) as exc:
        load_driver(unchecked, NoImages())
    assert str(exc.value) == message


def test_settings_refuse_names_without_a_driver() -> None:
    with pytest.raises(ValidationError, match="vmware"):
        ComputeSettings(host="c1", driver="vmware")


def test_registry_holds_the_real_and_the_fake_driver() -> None:
    assert set(names()) == {"fake", "libvirt"}


async def test_fake_actions_follow_the_domain_state() -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec())
    await driver.pause("i-1")
    assert await driver.get_power_state("i-1") == P.POWER_STATE_PAUSED
    with pytest.raises(DriverError, match="not running"):
        await driver.pause("i-1")
    await driver.unpause("i-1")
    await driver.suspend("i-1")
    assert await driver.get_power_state("i-1") == P.POWER_STATE_SUSPENDED
    with pytest.raises(DriverError, match="its domain is suspended, not paused"):
        await driver.unpause("i-1")
    await driver.resume("i-1")
    assert await driver.get_power_state("i-1") == P.POWER_STATE_RUNNING


async def test_fake_resize_keeps_the_old_size_until_confirm_or_revert() -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec())
    bigger = dataclasses.replace(spec(), vcpus=4)
    await driver.resize(bigger)
    await driver.revert_resize("i-1")
    assert driver._domains["i-1"].spec == spec()
    await driver.resize(bigger)
    await driver.confirm_resize("i-1")
    assert driver._domains["i-1"].spec == bigger
    assert "fake console of" in await driver.console_output("i-1", 1)


async def test_the_fake_reports_what_a_guest_does_by_itself() -> None:
    seen: list[tuple[str, int]] = []
    driver = FakeDriver(SIZE)
    await driver.start(lambda i, p: seen.append((i, p)))
    await driver.spawn(spec())
    driver.guest_power_change("i-1", P.POWER_STATE_CRASHED)
    assert seen == [("i-1", P.POWER_STATE_CRASHED)]


async def test_a_hang_file_hangs_every_call_until_it_is_gone(tmp_path: Path) -> None:
    """The fake hypervisor hangs while its hang file exists: calls time out and degrade the health;
    once the file is gone, the stuck calls get their (late) answer and the next call clears it."""
    hang = tmp_path / "hang"
    driver = FakeDriver(SIZE, hang_file=hang, call_timeout_s=0.2, host="c1")
    await driver.spawn(spec("i-1"))
    hang.touch()
    with pytest.raises(CallTimeout, match=r"fake hypervisor of c1 did not answer 'starting the domain' within 0\.2 s"):
        await driver.spawn(spec("i-2"))
    with pytest.raises(CallTimeout):
        await driver.check()
    assert driver.health.reason == "fake hypervisor of c1 did not answer 'starting the domain' within 0.2 s"
    hang.unlink()
    for _ in range(100):
        if driver.calls.stuck == 0:
            break
        await asyncio.sleep(0.02)
    await driver.check()
    assert driver.health.reason == ""
    assert await driver.list_instances() == ["i-1"]  # the spawn that timed out never ran


def test_the_registry_gives_the_fake_driver_its_hang_file_and_call_timeout(tmp_path: Path) -> None:
    settings = ComputeSettings(host="c1", driver="fake", fake_hang_file=tmp_path / "hang",
                               hypervisor_call_timeout_s=2.5)  # fmt: skip
    driver = load_driver(settings, NoImages())
    assert isinstance(driver, FakeDriver)
    assert driver.hang_file == tmp_path / "hang"
    assert driver.calls.timeout_s == 2.5

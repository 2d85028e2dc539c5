"""The fake driver's domains kept in a file: they outlive the driver (a killed compute), and a test
reads them with read_domains."""

from __future__ import annotations

from pathlib import Path

from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.fake.domains import read_domains
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.drivers.fake.host import FakeHostSize
from stratus.v1 import servers_pb2

P = servers_pb2.PowerState
SIZE = FakeHostSize(vcpus=4, ram_mb=8192, disk_gb=100)


def spec(instance_id: str) -> InstanceSpec:
    return InstanceSpec(instance_id=instance_id, name="vm", vcpus=1, ram_mb=512, disk_gb=1, image_id="img",
                        user_data=b"\x00hi", metadata={"k": "v"}, public_keys={"key": "ssh-ed25519 AAAA"})  # fmt: skip


async def test_domains_outlive_the_driver_and_are_readable(tmp_path: Path) -> None:
    path = tmp_path / "fake-domains" / "compute-1.json"
    driver = FakeDriver(SIZE, domains_file=path, host="compute-1")
    await driver.spawn(spec("i-1"))
    await driver.spawn(spec("i-2"))
    await driver.power_off("i-2")
    await driver.destroy("i-3")
    assert sorted(read_domains(path)) == ["i-1", "i-2"]
    again = FakeDriver(SIZE, domains_file=path, host="compute-1")  # the compute restarted
    assert await again.list_instances() == ["i-1", "i-2"]
    assert await again.get_power_state("i-2") == P.POWER_STATE_SHUTDOWN
    assert "fake console of vm (i-1)" in await again.console_output("i-1", 0)
    await again.destroy("i-1")
    assert list(read_domains(path)) == ["i-2"]


async def test_without_a_file_the_domains_live_in_memory_only(tmp_path: Path) -> None:
    driver = FakeDriver(SIZE)
    await driver.spawn(spec("i-1"))
    assert read_domains(tmp_path / "none.json") == {}
    assert await FakeDriver(SIZE).list_instances() == []

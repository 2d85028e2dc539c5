"""The compute's host stats: I/O-heavy tasks and consecutive build failures, published on change."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.compute.stats import HostStatsTracker
from services.core import keys
from services.core.errors import Internal
from services.core.etcd import Store
from services.core.registration import Registration
from stratus.state.v1 import state_pb2
from tests.unit.compute.test_manager import HOST, ID, SIZE, put_record


class RecordingRegistration:
    """Stands in for the runner's Registration: remembers what each refresh published."""

    def __init__(self, tracker: HostStatsTracker) -> None:
        self.tracker = tracker
        self.published: list[state_pb2.HostStats] = []
        self.refreshed = asyncio.Event()

    async def refresh(self) -> None:
        self.published.append(self.tracker.record())
        self.refreshed.set()


async def settle(registration: RecordingRegistration) -> None:
    for _ in range(10):
        await asyncio.sleep(0)
    registration.refreshed.clear()


async def test_tracker_counts_and_publishes_the_latest_values() -> None:
    tracker = HostStatsTracker("h")
    registration = RecordingRegistration(tracker)
    tracker.attach(cast(Registration, registration))
    with tracker.io_op("a"), tracker.io_op("b"):
        assert tracker.record().io_ops == 2
        await settle(registration)
        assert registration.published[-1].io_ops == 2
    tracker.build_failed()
    tracker.build_failed()
    await settle(registration)
    assert registration.published[-1] == state_pb2.HostStats(io_ops=0, failed_builds=2)
    tracker.build_succeeded()
    await settle(registration)
    assert registration.published[-1] == state_pb2.HostStats()
    count = len(registration.published)
    tracker.build_succeeded()  # nothing changed: nothing published
    await settle(registration)
    assert len(registration.published) == count
    await tracker.close()


class SlowDriver(FakeDriver):
    """Lets the test look at the stats while a spawn is in progress."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(SIZE, fail_spawn=fail)
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def spawn(self, spec: InstanceSpec) -> None:
        self.started.set()
        await self.release.wait()
        await super().spawn(spec)


async def test_manager_counts_spawns_and_failures(store: Store) -> None:
    driver = SlowDriver(fail=True)
    manager = ComputeManager(ComputeSettings(host=HOST), store, driver)
    await manager.start()
    await put_record(store)
    build = asyncio.create_task(manager.build_instance(ID))
    await driver.started.wait()
    assert manager.stats.record().io_ops == 1
    stats = state_pb2.HostStats.FromString(manager.lease_records()[keys.host_stats(HOST)])
    assert stats.io_ops == 1
    driver.release.set()
    with pytest.raises(Internal):
        await build
    assert manager.stats.record() == state_pb2.HostStats(io_ops=0, failed_builds=1)
    driver.fail_spawn = False
    await manager.build_instance(ID)
    assert manager.stats.record() == state_pb2.HostStats()
    await manager.stop()


async def test_reserved_resources_and_capabilities_come_from_settings(store: Store) -> None:
    settings = ComputeSettings(host=HOST, reserved_host_vcpus=1, reserved_host_memory_mb=512,
                               reserved_host_disk_gb=10, architecture="aarch64", trusted=True)  # fmt: skip
    manager = ComputeManager(settings, store, FakeDriver(SIZE))
    await manager.start()
    caps = state_pb2.HostCapabilities.FromString(manager.lease_records()[keys.host_capabilities(HOST)])
    assert (caps.reserved_vcpus, caps.reserved_ram_mb, caps.reserved_disk_gb) == (1, 512, 10)
    assert (caps.architecture, caps.trusted, list(caps.vm_modes)) == ("aarch64", True, ["hvm"])
    await manager.stop()


async def test_stats_reach_etcd_on_the_lease(store: Store) -> None:
    tracker = HostStatsTracker(HOST)
    key = keys.host_stats(HOST)
    registration = Registration(store, 5, lambda: {key: tracker.record().SerializeToString()}, key)
    await registration.start()
    tracker.attach(registration)
    tracker.build_failed()
    for _ in range(100):
        kv = await store.get(key)
        if kv is not None and state_pb2.HostStats.FromString(kv.value).failed_builds == 1:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the stats were not published")
    assert kv.lease != 0
    await tracker.close()
    await registration.close()
    assert await store.get(key) is None

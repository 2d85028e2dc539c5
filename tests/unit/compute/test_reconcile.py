"""The reconciler against a real etcd, with the fake driver as the hypervisor: a guest's own power
changes reach the record, busy instances are left alone, orphaned domains go after their grace."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.locks import KeyedLocks
from services.compute.reconcile import Reconciler
from services.compute.settings import ComputeSettings
from services.core.etcd import Store
from tests.unit.compute.test_manager import HOST, ID, SIZE, P, T, V, put_record, server_of


def make(store: Store, grace_s: float = 10.0) -> tuple[Reconciler, FakeDriver, KeyedLocks]:
    driver, locks = FakeDriver(SIZE), KeyedLocks()
    settings = ComputeSettings(host=HOST, orphan_grace_s=grace_s)
    return Reconciler(settings, store, driver, locks), driver, locks


async def spawned(driver: FakeDriver, instance_id: str = ID) -> None:
    await driver.spawn(InstanceSpec(instance_id=instance_id, name="vm", vcpus=1, ram_mb=64, disk_gb=1, image_id="i"))


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_guest_that_powers_itself_off_becomes_stopped(store: Store) -> None:
    reconciler, driver, _ = make(store)
    await driver.start(reconciler.on_power_event)
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    await spawned(driver)
    driver.guest_power_change(ID, P.POWER_STATE_SHUTDOWN)

    async def stopped() -> bool:
        s = await server_of(store)
        return s.vm_state == V.VM_STATE_STOPPED and s.power_state == P.POWER_STATE_SHUTDOWN

    await until(stopped)
    await reconciler.stop()


async def test_a_crash_shows_as_crashed(store: Store) -> None:
    reconciler, driver, _ = make(store)
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    await spawned(driver)
    driver._domains[ID].power_state = P.POWER_STATE_CRASHED
    await reconciler.reconcile()
    server = await server_of(store)
    assert (server.power_state, server.vm_state) == (P.POWER_STATE_CRASHED, V.VM_STATE_STOPPED)


async def test_an_instance_with_a_task_or_a_held_lock_is_left_alone(store: Store) -> None:
    reconciler, driver, locks = make(store)
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_POWERING_OFF, power=P.POWER_STATE_RUNNING)
    await spawned(driver)
    driver._domains[ID].power_state = P.POWER_STATE_SHUTDOWN
    await reconciler.reconcile()
    assert (await server_of(store)).power_state == P.POWER_STATE_RUNNING
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    async with locks.hold(ID):
        await reconciler.reconcile()
    assert (await server_of(store)).power_state == P.POWER_STATE_RUNNING
    await reconciler.reconcile()
    assert (await server_of(store)).power_state == P.POWER_STATE_SHUTDOWN


async def test_an_orphaned_domain_is_removed_after_its_grace(store: Store) -> None:
    reconciler, driver, _ = make(store, grace_s=10.0)
    await spawned(driver, "orphan-1")
    await put_record(store, host="another-host", vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED)
    await spawned(driver, ID)  # a domain whose record places it on another host: an orphan too
    await reconciler.reconcile(now=100.0)
    assert set(reconciler.orphans) == {"orphan-1", ID}
    await reconciler.reconcile(now=105.0)
    assert await driver.list_instances() == sorted(["orphan-1", ID])
    await reconciler.reconcile(now=110.0)
    assert await driver.list_instances() == []
    assert reconciler.orphans == {}


async def test_a_domain_whose_record_appears_is_no_orphan(store: Store) -> None:
    reconciler, driver, _ = make(store, grace_s=10.0)
    await spawned(driver, ID)
    await reconciler.reconcile(now=100.0)
    assert ID in reconciler.orphans
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    await reconciler.reconcile(now=200.0)
    assert reconciler.orphans == {}
    assert await driver.list_instances() == [ID]


async def test_a_resize_interrupted_by_a_crash_is_rolled_back(store: Store) -> None:
    reconciler, driver, _ = make(store)
    await spawned(driver)
    small = driver._domains[ID].spec
    await driver.resize(dataclasses.replace(small, vcpus=4))  # the compute died before recording it
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    await reconciler.reconcile()
    assert driver._domains[ID].spec == small
    assert not await driver.resize_kept(ID)


async def test_a_resize_waiting_for_confirmation_is_kept(store: Store) -> None:
    reconciler, driver, _ = make(store)
    await spawned(driver)
    await driver.resize(dataclasses.replace(driver._domains[ID].spec, vcpus=4))
    await put_record(store, vm=V.VM_STATE_RESIZED, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    await reconciler.reconcile()
    assert await driver.resize_kept(ID)

"""Compute work is fenced by its action (issue 'Fenced flows'): a call names the action it serves,
the compute acts only while that action is the record's current one and the record is in the
call's task, and every outcome it writes compares both. Each test is a sequence of events that
broke before: a late outcome of a superseded or given-up call changed the record."""

from __future__ import annotations

import asyncio

from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.manager import ComputeManager
from services.core import instances
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from tests.unit.compute.test_manager import ID, SIZE, P, T, V, make_manager, put_record


class SlowDriver(FakeDriver):
    """A fake whose suspend and resize wait for ``release`` (a large guest's managed save, a long
    disk copy)."""

    def __init__(self) -> None:
        super().__init__(SIZE)
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.power_offs = 0

    async def suspend(self, instance_id: str) -> None:
        self.started.set()
        await self.release.wait()
        await super().suspend(instance_id)

    async def resize(self, spec: InstanceSpec) -> None:
        self.started.set()
        await self.release.wait()
        await super().resize(spec)

    async def power_off(self, instance_id: str, timeout_s: float = 0.0) -> None:
        self.power_offs += 1
        await super().power_off(instance_id, timeout_s)


async def begin(store: Store, action_id: str, task: int) -> None:
    """What the api writes when it accepts an action: the task and the record's current action."""

    def start(r: state_pb2.InstanceRecord) -> None:
        r.server.task_state = task  # type: ignore[assignment]
        r.action_id = action_id
        r.ClearField("report")

    await instances.update(store, ID, start)


async def give_up(store: Store) -> None:
    """The api's deadline passed: the task cleared with a fault, the action unchanged."""

    def fail(r: state_pb2.InstanceRecord) -> None:
        r.server.task_state = T.TASK_STATE_UNSPECIFIED
        r.server.fault.message = "gave up"

    await instances.update(store, ID, fail)


async def active(store: Store, driver: FakeDriver) -> ComputeManager:
    """A manager over ``driver`` with the server built and ACTIVE on it."""
    manager, _ = make_manager(store, driver)
    await put_record(store)
    await begin(store, "a-create", T.TASK_STATE_SCHEDULING)
    await manager.build_instance(ID, "a-create")
    record, _ = await instances.get(store, ID)
    assert record.server.vm_state == V.VM_STATE_ACTIVE
    return manager


async def test_a_suspend_given_up_then_a_stop_the_stop_runs_and_the_suspends_outcome_is_dropped(store: Store) -> None:
    driver = SlowDriver()
    manager = await active(store, driver)
    await begin(store, "a-suspend", T.TASK_STATE_SUSPENDING)
    await manager.accept_power("suspend", ID, action_id="a-suspend")
    await driver.started.wait()
    await give_up(store)  # the suspend outlived its deadline
    await begin(store, "a-stop", T.TASK_STATE_POWERING_OFF)
    await manager.accept_power("power_off", ID, action_id="a-stop")  # before: "accepted", started nothing
    driver.release.set()
    await manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert driver.power_offs == 1
    assert (record.server.vm_state, record.server.task_state) == (V.VM_STATE_STOPPED, T.TASK_STATE_UNSPECIFIED)
    assert not record.HasField("report")


async def test_a_resize_undone_by_the_api_is_not_recorded_resized_when_the_copy_ends(store: Store) -> None:
    driver = SlowDriver()
    manager = await active(store, driver)
    await begin(store, "a-resize", T.TASK_STATE_RESIZE_PREP)
    await manager.accept_resize(ID, "a-resize")
    await driver.started.wait()
    await give_up(store)  # build_timeout_s passed: the api put the old size back
    driver.release.set()
    await manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert record.server.vm_state == V.VM_STATE_ACTIVE  # not RESIZED with no record.resize
    assert not record.HasField("report")


async def test_a_call_for_an_action_that_is_not_current_changes_nothing(store: Store) -> None:
    driver = SlowDriver()
    manager = await active(store, driver)
    await begin(store, "a-stop-2", T.TASK_STATE_POWERING_OFF)
    _, before = await instances.get(store, ID)
    await manager.accept_power("power_off", ID, action_id="a-stop-1")  # a late ask of an older stop
    await manager.wait_idle(ID)
    await manager.confirm_resize(ID, "a-stop-2")  # the right action, not in its task
    await manager.revert_resize(ID, "a-old")
    await manager.destroy_instance(ID, "a-old")  # not deleting: stale
    _, after = await instances.get(store, ID)
    assert driver.power_offs == 0 and after == before
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING


async def test_a_build_superseded_while_spawning_leaves_no_domain_and_no_active_record(store: Store) -> None:
    driver = FakeDriver(SIZE, spawn_delay_s=0.3)
    manager, _ = make_manager(store, driver)
    await put_record(store)
    await begin(store, "a-create", T.TASK_STATE_SCHEDULING)
    await manager.accept_build(ID, "a-create")
    await begin(store, "a-other", T.TASK_STATE_SPAWNING)  # another action took the server over
    await manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert record.server.vm_state == V.VM_STATE_BUILDING and not record.HasField("report")
    assert await driver.list_instances() == []

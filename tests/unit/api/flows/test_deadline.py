"""The action's deadline (real etcd): written with the action by the request, it bounds every wait of
the flow, and a replica that takes the flow over keeps it instead of starting the clock again."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from services.api.flows import action_log, compute_wait
from services.api.flows.base import Deps, Limits, in_task, retrying, task_failed
from services.api.flows.build import built_on
from services.api.flows.compute_wait import on_compute
from services.core import context, instances, keys
from services.core.errors import DeadlineExceeded, Unavailable
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
R = servers_pb2.ServerActionResult
NONE = cast(Any, None)
ID = "s1"


class OneProcess:
    def incarnation(self, binary: str, host: str) -> int:
        return 7


def deps(store: Store) -> Deps:
    """An outage budget of a minute: a test that ends fast was bounded by the action's deadline."""
    return Deps(store, cast(Any, OneProcess()), NONE, NONE, Limits(flow_deadline_s=60.0))


async def server(store: Store, task: T.ValueType, vm_state: V.ValueType = V.VM_STATE_ACTIVE, host: str = "h1") -> None:
    record = state_pb2.InstanceRecord(server=servers_pb2.Server(id=ID, host=host, vm_state=vm_state,
                                                                task_state=task))  # fmt: skip
    await store.put(keys.instance(ID), record.SerializeToString())


async def action(store: Store, kind: str, deadline_in_s: float) -> None:
    """A running action whose deadline is ``deadline_in_s`` from now (negative: already passed, as
    for a flow a replica takes over late)."""
    found = servers_pb2.ServerAction(id=action_log.action_id(), server_id=ID, action=kind,
                                     result=R.SERVER_ACTION_RESULT_RUNNING)  # fmt: skip
    found.deadline.FromNanoseconds(time.time_ns() + int(deadline_in_s * 1e9))
    await store.put(keys.server_action(ID, found.id), found.SerializeToString())


def test_each_kind_has_its_budget_and_the_undoing_ones_none() -> None:
    limits = Limits(build_timeout_s=100, snapshot_timeout_s=50, flow_deadline_s=10)
    assert (limits.deadline_s("create"), limits.deadline_s("resize"), limits.deadline_s("snapshot")) == (110, 110, 60)
    assert limits.deadline_s("stop") == 130  # one compute call (120 s) and the outage budget
    assert [limits.deadline_s(k) for k in ("delete", "confirm-resize", "revert-resize")] == [None, None, None]


def test_a_new_action_carries_its_deadline() -> None:
    token = context.bind(context.RequestContext(user_id="u", project_id="p", roles=frozenset({"member"})))
    try:
        timed = action_log.new_action(ID, "stop", "p", deadline_s=30)
        untimed = action_log.new_action(ID, "delete", "p")
    finally:
        context.unbind(token)
    assert timed.deadline.ToNanoseconds() - timed.start_time.ToNanoseconds() == 30 * 10**9
    assert not untimed.HasField("deadline")


async def test_the_actions_deadline_ends_an_outage_wait_before_the_outage_budget(store: Store) -> None:
    await server(store, T.TASK_STATE_POWERING_OFF)
    await action(store, "stop", 0.3)

    async def flow() -> None:
        raise Unavailable("no compute service is running on h1", reason="COMPUTE_DOWN")

    with pytest.raises(Unavailable):
        await retrying(deps(store), ID, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF),
                       lambda why: task_failed(T.TASK_STATE_POWERING_OFF, "stop", why))  # fmt: skip
    record, _ = await instances.get(store, ID)
    assert record.server.task_state == 0
    assert record.server.fault.message.startswith("stop failed: gave up after an outage until its action's deadline")


async def test_a_flow_taken_over_after_its_deadline_gets_no_new_clock(store: Store) -> None:
    """The replica that drove the stop died; the next one finds the deadline passed: one try, then
    the fault, instead of another minute of waiting."""
    await server(store, T.TASK_STATE_POWERING_OFF)
    await action(store, "stop", -5)
    tries = 0

    async def flow() -> None:
        nonlocal tries
        tries += 1
        raise Unavailable("no compute service is running on h1", reason="COMPUTE_DOWN")

    with pytest.raises(Unavailable):
        await retrying(deps(store), ID, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF),
                       lambda why: task_failed(T.TASK_STATE_POWERING_OFF, "stop", why))  # fmt: skip
    assert tries == 1


async def test_past_the_deadline_the_compute_is_not_asked_but_its_outcome_counts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compute_wait, "TICK_S", 0.02)
    await server(store, T.TASK_STATE_SPAWNING, V.VM_STATE_BUILDING)
    await action(store, "create", -5)
    asked: list[int] = []

    async def ask() -> None:
        asked.append(1)

    async def build() -> None:
        await on_compute(deps(store), "h1", ID, "build", ask, built_on("h1"), timeout_s=600)

    with pytest.raises(DeadlineExceeded):
        await retrying(deps(store), ID, "build", build, in_task(T.TASK_STATE_SPAWNING))
    assert asked == []

    def active(record: state_pb2.InstanceRecord) -> None:
        record.server.vm_state, record.server.task_state = V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED

    await instances.update(store, ID, active)  # the compute finished meanwhile: that still counts
    await retrying(deps(store), ID, "build", build, lambda _r: True)
    assert asked == []

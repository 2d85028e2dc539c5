"""A long compute call as a flow step (real etcd): the flow asks, the compute answers at once and
writes the outcome into the record later; the wait wakes on the record's change, asks a restarted
compute again, and fails the attempt when the host has no compute or the call never ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from services.api.flows import compute_wait
from services.api.flows.base import Deps, Limits
from services.api.flows.build import built_on
from services.api.flows.compute_wait import Ended, on_compute
from services.api.flows.record_events import RecordEvents
from services.core import instances, keys
from services.core.errors import DeadlineExceeded, Internal, Unavailable
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
HOST = "h1"
ID = "s1"


class Processes:
    """The service directory as the wait sees it: which process (lease) serves the host."""

    def __init__(self) -> None:
        self.lease = 7

    def incarnation(self, binary: str, host: str) -> int:
        assert (binary, host) == ("compute", HOST)
        return self.lease


@pytest.fixture(autouse=True)
def fast_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute_wait, "TICK_S", 0.02)


@pytest.fixture
async def events(store: Store) -> AsyncIterator[RecordEvents]:
    events = RecordEvents(store)
    await events.start()
    yield events
    await events.stop()


def deps(store: Store, events: RecordEvents, processes: Processes, grace_s: float = 30.0) -> Deps:
    none = cast(Any, None)
    return Deps(store, cast(Any, processes), none, none, Limits(compute_down_grace_s=grace_s), events)


async def spawning(store: Store) -> None:
    server = servers_pb2.Server(id=ID, host=HOST, vm_state=V.VM_STATE_BUILDING, task_state=T.TASK_STATE_SPAWNING)
    await store.put(keys.instance(ID), state_pb2.InstanceRecord(server=server).SerializeToString())


def active(record: state_pb2.InstanceRecord) -> None:
    record.server.vm_state, record.server.task_state = V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED


def failed(record: state_pb2.InstanceRecord) -> None:
    fault = servers_pb2.Fault(code="INTERNAL", message="spawn failed on h1: disk full", reason="SPAWN_FAILED")
    record.report.CopyFrom(state_pb2.ComputeReport(host=HOST, call="build", fault=fault))


async def test_the_outcome_written_after_the_answer_ends_the_wait(store: Store, events: RecordEvents) -> None:
    await spawning(store)
    asked: list[int] = []

    async def ask() -> None:  # the compute accepts, and finishes a little later
        asked.append(1)
        asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(instances.update(store, ID, active)))

    ended = await on_compute(deps(store, events, Processes()), HOST, ID, "build", ask, built_on(HOST), 30)
    assert ended == Ended() and asked == [1]


async def test_a_reported_fault_is_the_attempts_error(store: Store, events: RecordEvents) -> None:
    await spawning(store)

    async def ask() -> None:
        await instances.update(store, ID, failed)

    ended = await on_compute(deps(store, events, Processes()), HOST, ID, "build", ask, built_on(HOST), 30)
    assert isinstance(ended.error, Internal)
    assert (ended.error.reason, ended.error.message) == ("SPAWN_FAILED", "spawn failed on h1: disk full")


async def test_a_restarted_compute_is_asked_again(store: Store, events: RecordEvents) -> None:
    await spawning(store)
    processes = Processes()
    asked: list[int] = []

    async def ask() -> None:
        asked.append(processes.lease)
        if len(asked) == 1:  # the process that accepted dies; another one serves the host
            processes.lease = 8
        else:
            await instances.update(store, ID, active)

    ended = await on_compute(deps(store, events, processes), HOST, ID, "build", ask, built_on(HOST), 30)
    assert ended == Ended() and asked == [7, 8]


async def test_a_host_left_without_compute_fails_the_attempt(store: Store, events: RecordEvents) -> None:
    await spawning(store)
    processes = Processes()

    async def ask() -> None:
        processes.lease = 0  # the compute died after accepting and nothing came back

    with pytest.raises(Unavailable) as exc:
        await on_compute(deps(store, events, processes, grace_s=0.2), HOST, ID, "build", ask, built_on(HOST), 30)
    assert exc.value.reason == "COMPUTE_DOWN" and exc.value.metadata == {"host": HOST}


async def test_a_call_that_never_ends_fails_at_its_deadline(store: Store, events: RecordEvents) -> None:
    await spawning(store)

    async def ask() -> None:
        return None

    with pytest.raises(DeadlineExceeded) as exc:
        await on_compute(deps(store, events, Processes()), HOST, ID, "build", ask, built_on(HOST), 0.3)
    assert exc.value.reason == "COMPUTE_TIMEOUT"


async def test_a_record_deleted_or_moved_meanwhile_ends_the_wait_without_error(store: Store) -> None:
    decide = built_on(HOST)
    assert decide(None) == Ended()
    moved = state_pb2.InstanceRecord(server=servers_pb2.Server(id=ID, host="h2", task_state=T.TASK_STATE_SPAWNING))
    assert decide(moved) == Ended()
    elsewhere = state_pb2.InstanceRecord(server=servers_pb2.Server(id=ID, host=HOST, task_state=T.TASK_STATE_SPAWNING))
    failed(elsewhere)
    elsewhere.report.host = "h0"  # an earlier host's report is not this attempt's outcome
    assert decide(elsewhere) is None


async def test_a_compute_that_does_not_answer_for_a_moment_is_asked_again(store: Store, events: RecordEvents) -> None:
    await spawning(store)
    asked: list[int] = []

    async def ask() -> None:  # restarting: the first two asks find nobody listening
        asked.append(1)
        if len(asked) < 3:
            raise Unavailable("connection refused", reason="COMPUTE_DOWN")
        await instances.update(store, ID, active)

    ended = await on_compute(deps(store, events, Processes()), HOST, ID, "build", ask, built_on(HOST), 30)
    assert ended == Ended() and len(asked) == 3


async def test_a_compute_that_never_answers_fails_the_attempt_after_the_grace(
    store: Store, events: RecordEvents
) -> None:
    await spawning(store)

    async def ask() -> None:
        raise Unavailable("connection refused", reason="COMPUTE_DOWN")

    with pytest.raises(Unavailable) as exc:
        await on_compute(deps(store, events, Processes(), grace_s=0.3), HOST, ID, "build", ask, built_on(HOST), 30)
    assert exc.value.reason == "COMPUTE_DOWN"

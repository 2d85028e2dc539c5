"""Flows wait outages out (real etcd): an outage pauses the flow and it resumes while the record
still needs it; a real error is raised at once; past the deadline the record gets the fault."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest
from etcd3aio import EtcdConnectionError

from services.api.flows.base import Deps, Limits, in_task, retrying, task_failed
from services.core import instances
from services.core.backoff import backoff
from services.core.errors import FailedPrecondition, Unavailable
from services.core.etcd import Store
from stratus.v1 import servers_pb2
from tests.support.records import stopping

T = servers_pb2.TaskState
NONE = cast(Any, None)


def deps(store: Store, deadline_s: float = 60.0) -> Deps:
    return Deps(store, NONE, NONE, NONE, Limits(flow_deadline_s=deadline_s))


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    delays = list(itertools.islice(backoff(0.5, 5.0), 8))
    steps = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))


async def test_an_outage_pauses_the_flow_and_it_resumes(store: Store) -> None:
    instance_id = await stopping(store)
    calls = 0

    async def flow() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise EtcdConnectionError("KV.Range failed after 3 attempts: UNAVAILABLE")
        if calls == 2:
            raise Unavailable("no scheduler service is running")

    await retrying(deps(store), instance_id, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF))
    assert calls == 3


async def test_a_flow_the_record_no_longer_needs_is_not_resumed(store: Store) -> None:
    instance_id = await stopping(store)
    calls = 0

    async def flow() -> None:  # the compute finished the stop; only the reply was lost
        nonlocal calls
        calls += 1
        await instances.update(store, instance_id, lambda r: setattr(r.server, "task_state", 0))
        raise Unavailable("the reply was lost")

    await retrying(deps(store), instance_id, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF))
    assert calls == 1


async def test_a_real_error_is_raised_at_once(store: Store) -> None:
    instance_id = await stopping(store)

    async def flow() -> None:
        raise FailedPrecondition("no")

    with pytest.raises(FailedPrecondition):
        await retrying(deps(store), instance_id, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF))


async def test_past_the_deadline_the_record_gets_the_fault(store: Store) -> None:
    instance_id = await stopping(store)

    async def flow() -> None:
        raise Unavailable("no compute service is running on compute-1", reason="COMPUTE_DOWN")

    with pytest.raises(Unavailable):
        await retrying(deps(store, deadline_s=0.5), instance_id, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF),
                       lambda why: task_failed(T.TASK_STATE_POWERING_OFF, "stop", why))  # fmt: skip
    record, _ = await instances.get(store, instance_id)
    assert record.server.task_state == 0
    assert record.server.fault.code == "UNAVAILABLE"
    assert record.server.fault.message.startswith("stop failed: gave up after an outage for 0s: no compute service")

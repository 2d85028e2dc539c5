"""etcd out of space (NOSPACE) only delays a flow: it pauses like an outage, and past its deadline
the record gets no fault (no ERROR): the flow stays in its task for its owner to resume."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest

from services.api.flows.base import Deps, Limits, in_task, is_outage, retrying, store_is_full, task_failed
from services.core import instances
from services.core.errors import STATE_STORE_FULL, Unavailable, state_store_full
from services.core.etcd import Store
from stratus.v1 import servers_pb2
from tests.support.records import stopping

T = servers_pb2.TaskState
NONE = cast(Any, None)


def nospace() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                details="etcdserver: mvcc: database space exceeded")  # fmt: skip


def test_nospace_is_found_raised_here_reported_by_a_peer_or_as_a_cause() -> None:
    assert store_is_full(nospace()) and is_outage(nospace())
    assert store_is_full(state_store_full()) and state_store_full().reason == STATE_STORE_FULL
    try:
        try:
            raise state_store_full()
        except Unavailable as err:
            raise Unavailable("the scheduler was unreachable", reason="SCHEDULER_UNREACHABLE") from err
    except Unavailable as outer:
        assert store_is_full(outer)
    assert not store_is_full(Unavailable("no compute", reason="COMPUTE_DOWN"))


@pytest.mark.parametrize("error", [nospace, state_store_full], ids=["etcd", "peer"])
async def test_past_the_deadline_nospace_leaves_no_fault(store: Store, error: Any) -> None:
    instance_id = await stopping(store)
    calls = 0

    async def flow() -> None:
        nonlocal calls
        calls += 1
        raise error()

    deps = Deps(store, NONE, NONE, NONE, Limits(flow_deadline_s=0.5))
    with pytest.raises((grpc.aio.AioRpcError, Unavailable)):
        await retrying(deps, instance_id, "stop", flow, in_task(T.TASK_STATE_POWERING_OFF),
                       lambda why: task_failed(T.TASK_STATE_POWERING_OFF, "stop", why))  # fmt: skip
    assert calls > 1  # it waited, trying again
    record, _ = await instances.get(store, instance_id)
    assert record.server.task_state == T.TASK_STATE_POWERING_OFF  # still to do: its owner resumes it
    assert not record.server.HasField("fault") and record.server.vm_state == servers_pb2.VmState.VM_STATE_ACTIVE

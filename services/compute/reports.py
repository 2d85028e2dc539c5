"""How a compute writes the outcome of a long call it accepted into the instance's record (the
``report`` the asking flow waits for), and how it keeps writing through an etcd outage: the
outcome of a spawn that finished is never dropped because etcd was away for a moment."""

from __future__ import annotations

import asyncio
import logging

from services.compute import transitions
from services.core import instances
from services.core.backoff import backoff
from services.core.compute_report import fault_of
from services.core.errors import FailedPrecondition, NotFound, StratusError, is_transient
from services.core.etcd import Store, is_store_outage
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)


def report(
    host: str, instance_id: str, call: str, err: StratusError | None, image_id: str = "",
    fence: transitions.Fence | None = None,
) -> transitions.Mutation:  # fmt: skip
    """Records the outcome while the record still places the server here (and no delete runs),
    and is still at the call's action and task (``fence``): a superseded call's outcome is dropped."""
    outcome = state_pb2.ComputeReport(host=host, call=call, image_id=image_id)
    if err is not None:
        outcome.fault.CopyFrom(fault_of(err))

    def mutate(record: state_pb2.InstanceRecord) -> None:
        transitions.check_current(record, host, instance_id, fence)
        record.report.CopyFrom(outcome)

    return mutate


async def write(store: Store, instance_id: str, mutation: transitions.Mutation) -> state_pb2.InstanceRecord:
    """``instances.update`` tried again with backoff while etcd is unreachable, until it lands or
    the record refuses it (NotFound, FailedPrecondition: deleted or moved meanwhile)."""
    delays = backoff()
    while True:
        try:
            return await instances.update(store, instance_id, mutation)
        except (NotFound, FailedPrecondition):
            raise
        except Exception as exc:
            if not (is_store_outage(exc) or is_transient(exc)):
                raise
            log.warning("server %s: cannot write its record now (%s); trying again", instance_id, exc)
            await asyncio.sleep(next(delays))

"""A compute call as a step of a flow (power actions, resize, confirm, revert): made only while the
server is still in the step's task (a resumed flow whose compute finished makes none), recorded
as a step of the action, and run either as a call that answers when it is done (``called``) or
as one the compute accepts at once and reports through the record (``accepted``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.api.flows import action_log
from services.api.flows.base import Deps, Limits
from services.api.flows.compute_wait import Decide, Ended, on_compute, reported_error
from services.api.peers import call
from services.core import compute_report, instances
from services.core.errors import NotFound, StratusError
from services.core.telemetry import tracer
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)
# How a step runs on the server (its record as read when it started; the call names the record's
# action, the compute's fence): the error it failed with, if it did.
Run = Callable[[Deps, state_pb2.InstanceRecord], Awaitable[StratusError | None]]


async def compute_step(
    deps: Deps, instance_id: str, method: str, run: Run, task: int, starts_from: int | None = None
) -> StratusError | None:
    """Runs the compute's ``method`` if the server is still in ``task`` (and vm state
    ``starts_from``, if given); the error it failed with, if it did. The compute records a
    success itself."""
    with tracer().start_as_current_span(f"api.{method}", attributes={"stratus.instance_id": instance_id}):
        try:
            record, _ = await instances.get(deps.store, instance_id)
        except NotFound:
            return None
        server = record.server
        if server.task_state != task or (starts_from is not None and server.vm_state != starts_from):
            return None
        recorded = await action_log.start_call_step(deps.store, server, method)
        err = await run(deps, record)
        await action_log.finish_step(deps.store, recorded, error=err)
        return err


def called(method: str, request: Callable[..., Any], timeout: Callable[[Limits], float]) -> Run:
    """A compute call that answers when it is done."""

    async def run(deps: Deps, record: state_pb2.InstanceRecord) -> StratusError | None:
        server = record.server
        asked = request(instance_id=server.id, action_id=record.action_id)
        try:
            await call(getattr(deps.compute(server.host), method), asked, timeout(deps.limits))
        except StratusError as err:
            log.warning("%s of server %s failed: %s", method, server.id, err.message)
            return err
        return None

    return run


def accepted(method: str, request: Callable[..., Any], report: str, timeout: Callable[[Limits], float]) -> Run:
    """A compute call accepted at once: asked, then waited for on the record (``on_compute``)
    until the server leaves the task it was in, or the compute's ``report`` says why it failed."""

    async def run(deps: Deps, record: state_pb2.InstanceRecord) -> StratusError | None:
        server = record.server
        what = action_log.CALL_STEPS.get(method, ("", method))[1]
        asked = request(instance_id=server.id, action_id=record.action_id)
        ask = lambda: call(getattr(deps.compute(server.host), method), asked)  # noqa: E731
        decide = task_ended(server.host, server.task_state, report)
        try:
            ended = await on_compute(deps, server.host, server.id, what, ask, decide, timeout(deps.limits))
        except StratusError as err:
            return err
        return ended.error

    return run


def task_ended(host: str, task: int, report: str) -> Decide:
    """The call on ``host`` ended: the record left ``task`` (the compute recorded the new state,
    or the record moved on: deleted, deleting, another host), or the compute reported its fault."""

    def decide(record: state_pb2.InstanceRecord | None) -> Ended | None:
        if record is None or record.server.task_state != task or record.server.host != host:
            return Ended()
        if compute_report.reported(record, host, report):
            return Ended(reported_error(record))
        return None

    return decide

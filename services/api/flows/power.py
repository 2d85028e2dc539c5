"""Power actions (stop, start, reboot, pause, unpause, suspend, resume): one compute call, accepted
at once; the compute records the outcome (the server's new state, or the report's fault) and the
flow waits for it on the record. On a failure the task is cleared and the fault says why; a
compute that cannot be reached is asked again until the flow's deadline. Resumed from the
action's task."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from services.api import action_log
from services.api.actions import ACTIONS
from services.api.flows.base import Deps, task_failed
from services.api.flows.compute_wait import Decide, Ended, on_compute, reported_error
from services.api.peers import CALL_TIMEOUT_S, call
from services.core import compute_report, instances
from services.core.errors import NotFound, StratusError, is_transient
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
from stratus.state.v1 import state_pb2

# action -> (Compute method, its request for an instance id)
COMPUTE_CALLS: dict[str, tuple[str, Callable[..., Any]]] = {
    "stop": ("PowerOffInstance", compute_pb2.PowerOffInstanceRequest),
    "start": ("PowerOnInstance", compute_pb2.PowerOnInstanceRequest),
    "reboot": ("RebootInstance", functools.partial(compute_pb2.RebootInstanceRequest, hard=False)),
    "reboot-hard": ("RebootInstance", functools.partial(compute_pb2.RebootInstanceRequest, hard=True)),
    "pause": ("PauseInstance", compute_pb2.PauseInstanceRequest),
    "unpause": ("UnpauseInstance", compute_pb2.UnpauseInstanceRequest),
    "suspend": ("SuspendInstance", compute_pb2.SuspendInstanceRequest),
    "resume": ("ResumeInstance", compute_pb2.ResumeInstanceRequest),
}


def powered(host: str, task: int) -> Decide:
    """The call on ``host`` ended: the task is over (the compute recorded the new state, or the
    record moved on: deleted, deleting), or the compute reported its fault."""

    def decide(record: state_pb2.InstanceRecord | None) -> Ended | None:
        if record is None or record.server.task_state != task or record.server.host != host:
            return Ended()
        if compute_report.reported(record, host, compute_report.POWER):
            return Ended(reported_error(record))
        return None

    return decide


async def power(deps: Deps, instance_id: str, action: str) -> None:
    with tracer().start_as_current_span(f"api.{action}", attributes={"stratus.instance_id": instance_id}):
        err = await _call(deps, instance_id, action)
        if err is not None:
            await instances.update(deps.store, instance_id, task_failed(ACTIONS[action].task, action, err))


async def _call(deps: Deps, instance_id: str, action: str) -> StratusError | None:
    """Asks the compute and waits for its outcome; the error it failed with. A compute that could
    not be reached (or never finished) is raised: ``retrying`` asks again until the deadline."""
    method, request = COMPUTE_CALLS[action]
    task = ACTIONS[action].task
    try:
        record, _ = await instances.get(deps.store, instance_id)
    except NotFound:
        return None
    server = record.server
    if server.task_state != task:
        return None  # the compute finished it before this flow (taken over) came to it
    step = await action_log.start_call_step(deps.store, server, method)
    ask = lambda: call(getattr(deps.compute(server.host), method), request(instance_id=instance_id))  # noqa: E731
    try:
        ended = await on_compute(
            deps, server.host, instance_id, action, ask, powered(server.host, task), CALL_TIMEOUT_S
        )
        err = ended.error
    except StratusError as failed:
        err = failed
    await action_log.finish_step(deps.store, step, error=err)
    if err is not None and is_transient(err):
        raise err
    return err

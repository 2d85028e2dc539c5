"""Power actions (stop, start, reboot, pause, unpause, suspend, resume): one compute call, and the
compute records the outcome. On a failure the task is cleared and the fault says why. Resumed
from the action's task."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from services.api import action_log
from services.api.actions import ACTIONS
from services.api.flows.base import Deps, call_compute, flow_deadline, pause, task_failed
from services.core import instances
from services.core.backoff import backoff
from services.core.errors import NotFound, StratusError, is_transient
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2

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


async def power(deps: Deps, instance_id: str, action: str) -> None:
    with tracer().start_as_current_span(f"api.{action}", attributes={"stratus.instance_id": instance_id}):
        err = await _call(deps, instance_id, action)
        if err is not None:
            await instances.update(deps.store, instance_id, task_failed(ACTIONS[action].task, action, err))


async def _call(deps: Deps, instance_id: str, action: str) -> StratusError | None:
    """The compute call, tried again with backoff while the compute is unreachable (until the
    flow's deadline) and the server is still in the action's task; the error it ends with."""
    method, request = COMPUTE_CALLS[action]
    deadline, delays = flow_deadline(deps.limits), backoff()
    first = True
    while True:
        try:
            record, _ = await instances.get(deps.store, instance_id)
        except NotFound:
            return None
        if not first and record.server.task_state != ACTIONS[action].task:
            return None  # the compute finished it; only its reply was lost
        first = False
        step = await action_log.start_call_step(deps.store, record.server, method)
        err = await call_compute(deps, record.server, method, request)
        await action_log.finish_step(deps.store, step, error=err)
        if err is None or not is_transient(err) or not await pause(delays, deadline):
            return err

"""Power actions (stop, start, reboot, pause, unpause, suspend, resume): one compute call, accepted
at once; the compute records the outcome (the server's new state, or the report's fault) and the
flow waits for it on the record. On a failure the task is cleared and the fault says why; a
compute that cannot be reached is asked again until the flow's deadline. Resumed from the
action's task."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from services.api.flows.actions import ACTIONS
from services.api.flows.base import Deps, task_failed
from services.api.flows.compute_step import accepted, compute_step
from services.api.peers import CALL_TIMEOUT_S
from services.core import compute_report, instances
from services.core.errors import StratusError, is_transient
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
    """Asks the compute and waits for its outcome; the error it failed with. A compute that could
    not be reached (or never finished) is raised: ``retrying`` asks again until the deadline."""
    method, request = COMPUTE_CALLS[action]
    run = accepted(method, request, compute_report.POWER, lambda _limits: CALL_TIMEOUT_S)
    err = await compute_step(deps, instance_id, method, run, ACTIONS[action].task)
    if err is not None and is_transient(err):
        raise err
    return err

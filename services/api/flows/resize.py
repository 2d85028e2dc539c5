"""Resize on the server's own host (see services/api/resizing.py for the record and the claim):

- resize (RESIZE_PREP): the compute restarts the server with the size now in the record and
  leaves it RESIZED (VERIFY_RESIZE); if it fails, the old size goes back into the server and the
  claim, and the fault says why.
- confirm (RESIZE_CONFIRMING): the compute drops the old disk; then the claim is the new size.
- revert (RESIZE_REVERTING, the old size already back in the server): the compute restores the old
  disk; then the claim is the old size. If it fails, the new size goes back into the server.

Each is resumed from its task, and a compute call is made only while the server is still in the
state the call starts from, so a resumed flow whose compute finished only settles the claim.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.api import action_log, resizing
from services.api.flows.base import Deps, call_compute, task_failed
from services.api.flows.compute_wait import Decide, Ended, on_compute, reported_error
from services.api.peers import call
from services.core import compute_report, instances
from services.core.errors import NotFound, StratusError
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState


Run = Callable[[Deps, servers_pb2.Server], Awaitable[StratusError | None]]


def called(step: str, request: Callable[..., Any]) -> Run:
    """A compute call that answers when it is done (confirm, revert): the error it failed with."""
    return lambda deps, server: call_compute(deps, server, step, request, deps.limits.build_timeout_s)


async def _compute_step(
    deps: Deps, instance_id: str, step: str, run: Run, starts_from: int, task: int
) -> StratusError | None:
    """Runs the compute's ``step`` if the server is still in ``starts_from`` with ``task``; the
    error it failed with, if it did. The compute records a success itself."""
    with tracer().start_as_current_span(f"api.{step}", attributes={"stratus.instance_id": instance_id}):
        try:
            record, _ = await instances.get(deps.store, instance_id)
        except NotFound:
            return None
        server = record.server
        if server.vm_state != starts_from or server.task_state != task:
            return None
        recorded = await action_log.start_call_step(deps.store, server, step)
        err = await run(deps, server)
        await action_log.finish_step(deps.store, recorded, error=err)
        return err


async def _resized(deps: Deps, server: servers_pb2.Server) -> StratusError | None:
    """Asks the compute to resize (it answers at once) and waits for the outcome it records (or
    for its host to go)."""
    request = compute_pb2.ResizeInstanceRequest(instance_id=server.id)
    ask = lambda: call(deps.compute(server.host).ResizeInstance, request)  # noqa: E731
    try:
        ended = await on_compute(deps, server.host, server.id, "resize", ask, resized_on(server.host),
                                 deps.limits.build_timeout_s)  # fmt: skip
    except StratusError as err:
        return err
    return ended.error


def resized_on(host: str) -> Decide:
    """The resize on ``host`` ended: the compute recorded RESIZED (the task is no longer
    RESIZE_PREP) or reported its fault, or the record moved on (deleted, deleting)."""

    def decide(record: state_pb2.InstanceRecord | None) -> Ended | None:
        if record is None or record.server.task_state != T.TASK_STATE_RESIZE_PREP or record.server.host != host:
            return Ended()
        if compute_report.reported(record, host, compute_report.RESIZE):
            return Ended(reported_error(record))
        return None

    return decide


async def resize(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_PREP
    err = await _compute_step(deps, instance_id, "ResizeInstance", _resized, V.VM_STATE_ACTIVE, task)
    if err is not None:
        fail = task_failed(task, "resize", err)

        def undo(r: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, _c: Any) -> bool | None:
            if r.server.task_state != task:
                return False
            resizing.undo(r, usage)
            return fail(r)

        await resizing.with_claim(deps.store, instance_id, undo)


async def confirm(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_CONFIRMING
    confirming = called("ConfirmResizeInstance", compute_pb2.ConfirmResizeInstanceRequest)
    err = await _compute_step(deps, instance_id, "ConfirmResizeInstance", confirming, V.VM_STATE_RESIZED, task)
    if err is not None:
        await instances.update(deps.store, instance_id, task_failed(task, "confirm resize", err))
    await settle(deps, instance_id)


async def revert(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_REVERTING
    reverting = called("RevertResizeInstance", compute_pb2.RevertResizeInstanceRequest)
    err = await _compute_step(deps, instance_id, "RevertResizeInstance", reverting, V.VM_STATE_RESIZED, task)
    if err is not None:
        fail = task_failed(task, "revert resize", err)

        def back(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state != task:
                return False
            resizing.swap_sizes(r)  # the new size again: the server still runs it
            return fail(r)

        await instances.update(deps.store, instance_id, back)
    await settle(deps, instance_id)


async def settle(deps: Deps, instance_id: str) -> None:
    """The claim becomes the server's size once the compute confirmed or reverted (else nothing)."""
    try:
        await resizing.with_claim(deps.store, instance_id, resizing.settle)
    except NotFound:
        return

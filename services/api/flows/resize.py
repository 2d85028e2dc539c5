"""Resize on the server's own host (see services/api/flows/resize_claims.py for the record and the claim):

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

from typing import Any

from services.api.flows import resize_claims
from services.api.flows.base import Deps, Limits, task_failed
from services.api.flows.compute_step import accepted, called, compute_step
from services.core import compute_report, instances
from services.core.errors import NotFound
from stratus.compute.v1 import compute_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState


def _timeout(limits: Limits) -> float:
    return limits.build_timeout_s  # a resize copies the whole disk


RESIZING = accepted("ResizeInstance", compute_pb2.ResizeInstanceRequest, compute_report.RESIZE, _timeout)
CONFIRMING = called("ConfirmResizeInstance", compute_pb2.ConfirmResizeInstanceRequest, _timeout)
REVERTING = called("RevertResizeInstance", compute_pb2.RevertResizeInstanceRequest, _timeout)


async def resize(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_PREP
    err = await compute_step(deps, instance_id, "ResizeInstance", RESIZING, task, V.VM_STATE_ACTIVE)
    if err is not None:
        fail = task_failed(task, "resize", err)

        def undo(r: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, _c: Any) -> bool | None:
            if r.server.task_state != task:
                return False
            resize_claims.undo(r, usage)
            return fail(r)

        await resize_claims.with_claim(deps.store, instance_id, undo)


async def confirm(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_CONFIRMING
    err = await compute_step(deps, instance_id, "ConfirmResizeInstance", CONFIRMING, task, V.VM_STATE_RESIZED)
    if err is not None:
        await instances.update(deps.store, instance_id, task_failed(task, "confirm resize", err))
    await settle_resize(deps, instance_id)


async def revert(deps: Deps, instance_id: str) -> None:
    task = T.TASK_STATE_RESIZE_REVERTING
    err = await compute_step(deps, instance_id, "RevertResizeInstance", REVERTING, task, V.VM_STATE_RESIZED)
    if err is not None:
        fail = task_failed(task, "revert resize", err)

        def back(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state != task:
                return False
            resize_claims.swap_sizes(r)  # the new size again: the server still runs it
            return fail(r)

        await instances.update(deps.store, instance_id, back)
    await settle_resize(deps, instance_id)


async def settle_resize(deps: Deps, instance_id: str) -> None:
    """The claim becomes the server's size once the compute confirmed or reverted (else nothing)."""
    try:
        await resize_claims.with_claim(deps.store, instance_id, resize_claims.settle_claim)
    except NotFound:
        return

"""Snapshot (IMAGE_SNAPSHOT): the compute copies the server's disk into the SAVING image through
the api's ImageStore, which makes it ACTIVE. If anything fails the image record and its bytes are
removed (no half-made image is left), the server's task is cleared and the log says why; the
server itself is not at fault. Resumed from the task with the server's SAVING snapshot image."""

from __future__ import annotations

import logging

from services.api.flows import action_log
from services.api.flows.base import Deps, clear_task
from services.api.flows.compute_wait import Decide, Ended, on_compute, reported_error
from services.api.peers import call
from services.core import compute_report, instances
from services.core.errors import FailedPrecondition, Internal, NotFound, StratusError
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import images_pb2, servers_pb2

log = logging.getLogger(__name__)
T = servers_pb2.TaskState


async def snapshot(deps: Deps, instance_id: str, image_id: str) -> None:
    attributes = {"stratus.instance_id": instance_id, "stratus.image_id": image_id}
    with tracer().start_as_current_span("api.snapshot", attributes=attributes):
        try:
            await _copy(deps, instance_id, image_id)
            log.info("server %s: snapshot saved as image %s", instance_id, image_id)
        except StratusError as err:
            log.warning("snapshot of server %s failed: %s; image %s is removed", instance_id, err.message, image_id)
            await deps.images.discard(image_id)
            await action_log.finish_action(deps.store, instance_id, "snapshot", error=err)
        await _clear(deps, instance_id)


async def _copy(deps: Deps, instance_id: str, image_id: str) -> None:
    """Asks the compute to copy (it answers at once) and waits for the outcome it records."""
    record, _ = await instances.get(deps.store, instance_id)
    host = record.server.host
    request = compute_pb2.SnapshotInstanceRequest(instance_id=instance_id, image_id=image_id,
                                                  action_id=record.action_id)  # fmt: skip
    await action_log.start_step(deps.store, instance_id, "snapshot", "snapshot", host)
    ask = lambda: call(deps.compute(host).SnapshotInstance, request)  # noqa: E731
    ended = await on_compute(deps, host, instance_id, "snapshot", ask, copied(host, image_id),
                             deps.limits.snapshot_timeout_s)  # fmt: skip
    if ended.error is not None:
        raise ended.error
    found = await deps.images.find(image_id)
    if found is None or found[0].status != images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
        raise Internal(f"the compute reported the snapshot done but image {image_id} is not ACTIVE")


def copied(host: str, image_id: str) -> Decide:
    """The copy into ``image_id`` on ``host`` ended: the compute reported, or the server was
    deleted or moved meanwhile (the image is not finished then)."""

    def decide(record: state_pb2.InstanceRecord | None) -> Ended | None:
        if record is None or record.server.task_state == T.TASK_STATE_DELETING or record.server.host != host:
            return Ended(FailedPrecondition("the server was deleted or moved during the snapshot"))
        if compute_report.reported(record, host, compute_report.SNAPSHOT, image_id):
            return Ended(reported_error(record))
        return None

    return decide


async def resume(deps: Deps, instance_id: str) -> None:
    """After an api restart: copy again into the server's SAVING image; none left means it was
    saved (or discarded) already, and only the task remains to clear."""
    image = await deps.images.saving_snapshot_of(instance_id)
    if image is not None:
        await snapshot(deps, instance_id, image.id)
    else:
        await _clear(deps, instance_id)


async def _clear(deps: Deps, instance_id: str) -> None:
    try:
        await instances.update(deps.store, instance_id, clear_task(T.TASK_STATE_IMAGE_SNAPSHOT))
    except NotFound:
        return

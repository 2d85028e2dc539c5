"""Snapshot (IMAGE_SNAPSHOT): the compute copies the server's disk into the SAVING image through
the api's ImageStore, which makes it ACTIVE. If anything fails the image record and its bytes are
removed (no half-made image is left), the server's task is cleared and the log says why; the
server itself is not at fault. Resumed from the task with the server's SAVING snapshot image."""

from __future__ import annotations

import logging

from services.api import action_log
from services.api.flows.base import Deps, clear_task
from services.api.peers import call
from services.core import instances
from services.core.errors import Internal, NotFound, StratusError
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
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
    record, _ = await instances.get(deps.store, instance_id)
    request = compute_pb2.SnapshotInstanceRequest(instance_id=instance_id, image_id=image_id)
    stub = deps.compute(record.server.host)
    await action_log.start_step(deps.store, instance_id, "snapshot", "snapshot", record.server.host)
    await call(stub.SnapshotInstance, request, deps.limits.snapshot_timeout_s)
    found = await deps.images.find(image_id)
    if found is None or found[0].status != images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
        raise Internal(f"the compute reported the snapshot done but image {image_id} is not ACTIVE")


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

"""Delete: (after any task in progress on this api) destroy on the host, discard a snapshot of the
server still SAVING (its copy will never finish), forget the group membership, then remove the
record with its quota charge and its claim, in one transaction (so the claim goes exactly when the
record does). Resumed from DELETING."""

from __future__ import annotations

import asyncio
import logging

from services.api.flows import action_log
from services.api.flows.base import Deps, pause
from services.api.peers import call
from services.api.quotas import counted
from services.api.server_groups.manager import forget_member
from services.core import instances
from services.core.backoff import backoff
from services.core.errors import NotFound, Unavailable
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2

log = logging.getLogger(__name__)
# How long a delete waits for an unreachable compute (a restart takes seconds) before it deletes
# the record without it.
COMPUTE_DOWN_WAIT_S = 30.0


async def delete(deps: Deps, instance_id: str) -> None:
    with tracer().start_as_current_span("api.delete", attributes={"stratus.instance_id": instance_id}):
        try:
            record, _ = await instances.get(deps.store, instance_id)
        except NotFound:
            return
        host = record.server.host
        if host:
            destroying = await action_log.start_step(deps.store, instance_id, "delete", "destroy", host)
            if not await _destroy(deps, host, instance_id, record.action_id):
                log.warning("compute %s is down: deleting %s locally; the host cleans up later", host, instance_id)
                await action_log.finish_step(deps.store, destroying, error="the compute is down: its domain goes later")
            await action_log.finish_step(deps.store, destroying)
        saving = await deps.images.saving_snapshot_of(instance_id)
        if saving is not None:  # a snapshot whose flow died with its replica: never finished now
            log.info("delete of %s discards its unfinished snapshot %s", instance_id, saving.id)
            await deps.images.discard(saving.id)
        if record.server.server_group_id:
            await forget_member(deps.store, record.server.server_group_id, instance_id)
        await action_log.retire(deps.store, instance_id)  # the actions outlive the record (a retention lease)
        await counted.delete_instance(deps.store, instance_id)  # gives its quota charge and claim back


async def _destroy(deps: Deps, host: str, instance_id: str, action_id: str) -> bool:
    """Destroys the domain on ``host``; a compute that is unreachable (restarting, most often) is
    asked again with backoff for up to ``COMPUTE_DOWN_WAIT_S``. False when it never answered: the
    record goes anyway and the host's orphan sweep removes the domain when it is back."""
    deadline = asyncio.get_running_loop().time() + min(COMPUTE_DOWN_WAIT_S, deps.limits.flow_deadline_s)
    delays = backoff()
    while True:
        try:
            request = compute_pb2.DestroyInstanceRequest(instance_id=instance_id, action_id=action_id)
            await call(deps.compute(host).DestroyInstance, request)
            return True
        except Unavailable as err:
            if not await pause(delays, deadline):
                return False
            log.info("delete of %s: compute %s unreachable (%s); asking again", instance_id, host, err.message)

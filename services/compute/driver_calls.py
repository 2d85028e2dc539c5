"""Calls into the virt driver as the compute manager makes them: what the driver needs from a
record (``spec_of``), and how a driver failure becomes the error a caller sees (``call``,
``spawn``), cleaning up what a failed spawn made."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.compute.drivers.base import BadImage, DriverError, ImageTooBig, InstanceNotFound, InstanceSpec, VirtDriver
from services.core.errors import FailedPrecondition, Internal, InvalidArgument
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)

DriverCall = Callable[[], Awaitable[None]]
RecordCall = Callable[[state_pb2.InstanceRecord], Awaitable[None]]
# A build failure no other host would avoid: the api does not reschedule it.
IMAGE_UNUSABLE = "IMAGE_UNUSABLE"


def spec_of(instance_id: str, record: state_pb2.InstanceRecord) -> InstanceSpec:
    """What the driver needs from the record: the server and the public key copied at creation."""
    server, res = record.server, record.server.resources
    return InstanceSpec(
        instance_id=instance_id,
        name=server.name,
        vcpus=res.vcpus,
        ram_mb=res.ram_mb,
        disk_gb=res.disk_gb,
        image_id=server.image_id,
        project_id=server.project_id,
        user_data=server.user_data,
        metadata=dict(server.metadata),
        public_keys={record.key.name: record.key.public_key} if record.key.name else {},
    )


def ignoring_record(method: Callable[..., Awaitable[None]], *args: Any) -> RecordCall:
    """A driver call that needs only its arguments, not the record."""

    async def call(_record: state_pb2.InstanceRecord) -> None:
        await method(*args)

    return call


async def call(host: str, action: str, instance_id: str, driver_call: DriverCall) -> None:
    """Runs ``driver_call``: no domain is FailedPrecondition(DOMAIN_NOT_FOUND), a driver failure
    Internal(<ACTION>_FAILED)."""
    try:
        await driver_call()
    except InstanceNotFound as err:
        raise FailedPrecondition(
            f"{action} failed on {host}: server {instance_id} has no domain here", reason="DOMAIN_NOT_FOUND"
        ) from err
    except DriverError as err:
        log.warning("%s of server %s failed on %s: %s", action, instance_id, host, err)
        raise Internal(f"{action} failed on {host}: {err}", reason=f"{action.upper()}_FAILED") from err


async def cleanup(driver: VirtDriver, host: str, instance_id: str) -> None:
    """Best-effort destroy after a failure; the original error is the one to report."""
    try:
        await driver.destroy(instance_id)
    except DriverError as err:
        log.error("could not destroy server %s on %s after a failure: %s", instance_id, host, err)


async def spawn(driver: VirtDriver, host: str, spec: InstanceSpec, on_failure: Callable[[], None]) -> None:
    """Spawns, or destroys whatever the attempt made and raises: an image the flavor cannot hold is
    the request's fault (INVALID_ARGUMENT), an unusable image FailedPrecondition(IMAGE_UNUSABLE),
    anything else Internal(SPAWN_FAILED) (``on_failure`` counts it)."""
    try:
        await driver.spawn(spec)
    except BadImage as err:
        log.warning("spawn of server %s failed on %s: %s", spec.instance_id, host, err)
        await cleanup(driver, host, spec.instance_id)
        if isinstance(err, ImageTooBig):  # the flavor is too small: the request's fault, not INTERNAL
            raise InvalidArgument([("flavor_id", f"spawn failed on {host}: {err}")], reason=err.reason) from err
        raise FailedPrecondition(f"spawn failed on {host}: {err}", reason=IMAGE_UNUSABLE) from err
    except DriverError as err:
        log.warning("spawn of server %s failed on %s: %s", spec.instance_id, host, err)
        on_failure()
        await cleanup(driver, host, spec.instance_id)
        raise Internal(f"spawn failed on {host}: {err}", reason="SPAWN_FAILED") from err
    except asyncio.CancelledError:
        log.warning("spawn of server %s on %s was cancelled; cleaning up", spec.instance_id, host)
        await asyncio.shield(cleanup(driver, host, spec.instance_id))
        raise

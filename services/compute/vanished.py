"""A server whose domain vanished from its host behind the compute's back (an operator's ``virsh
undefine``, a removed instance directory), handled as Nova's power sync and hard reboot do.

- ``record``: the reconcile pass writes it into the record, once: SHUTOFF (vm_state STOPPED, power
  state NOSTATE) with a fault that says so while its disk remains, ERROR when the disk is gone too.
  The write is a compare-and-swap on the revision of the record read before the driver was asked: a
  record a flow changed meanwhile is left as it is (the next pass looks again). The server keeps
  its host and its claim there: it still lives on that host (a start brings it back, a delete frees
  the claim).
- ``recreating``: a start or a hard reboot (the manager's) first defines the domain again from the
  record over the disk that remains (the driver's ``redefine``), as Nova's ``_hard_reboot``
  recreates the domain from the instance; with the disk gone too it is refused,
  FAILED_PRECONDITION(DOMAIN_NOT_FOUND) saying so. A soft reboot recreates nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from services.compute.drivers.base import InstanceSpec, VirtDriver
from services.core import instances
from services.core.compute_report import fault_of
from services.core.errors import FailedPrecondition
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
V = servers_pb2.VmState
P = servers_pb2.PowerState
T = servers_pb2.TaskState
RecordCall = Callable[[state_pb2.InstanceRecord], Awaitable[None]]
SpecOf = Callable[[str, state_pb2.InstanceRecord], InstanceSpec]  # driver_calls.spec_of

DOMAIN_VANISHED = "DOMAIN_VANISHED"  # the fault's reason: the disk remains, a start defines it again
DISK_VANISHED = "DISK_VANISHED"  # the disk is gone too: nothing to start
# What a vanished domain can be in the record: one with a task is its flow's to finish, BUILDING has
# none yet, ERROR and DELETED are past it, RESIZED waits for a confirm or revert (which restore or
# keep the domain of their own).
FOLLOWED = (V.VM_STATE_ACTIVE, V.VM_STATE_STOPPED, V.VM_STATE_PAUSED, V.VM_STATE_SUSPENDED)


def fault(host: str, disk_remains: bool) -> servers_pb2.Fault:
    if disk_remains:
        message = (
            f"the domain of this server vanished from {host}; its disk remains: start or hard-reboot it to recreate it"
        )
        reason = DOMAIN_VANISHED
    else:
        message = f"the domain of this server vanished from {host} and its disk is gone: delete it"
        reason = DISK_VANISHED
    return fault_of(FailedPrecondition(message, reason=reason, metadata={"host": host}))


def followed(server: servers_pb2.Server, host: str) -> bool:
    """Whether this module looks after the server when the driver has no domain for it here."""
    return server.host == host and server.task_state == T.TASK_STATE_UNSPECIFIED and server.vm_state in FOLLOWED


def to_record(server: servers_pb2.Server, disk_remains: bool) -> bool:
    """Whether the record still has to say the domain is gone. Shut off without a domain and with a
    fault (this module's, or that of a start which failed since: it is not overwritten), it says so
    already, unless the disk went too."""
    shut_off = server.vm_state == V.VM_STATE_STOPPED and server.power_state == P.POWER_STATE_NOSTATE
    return not (shut_off and server.HasField("fault")) or not disk_remains


def mark(server: servers_pb2.Server, host: str, disk_remains: bool) -> None:
    """SHUTOFF with the fault while the disk remains, ERROR when it is gone; no domain, no power."""
    server.vm_state = V.VM_STATE_STOPPED if disk_remains else V.VM_STATE_ERROR
    server.power_state = P.POWER_STATE_NOSTATE
    server.fault.CopyFrom(fault(host, disk_remains))


async def record(
    store: Store, seen: state_pb2.InstanceRecord, revision: int, host: str, disk_remains: bool
) -> state_pb2.InstanceRecord | None:
    """Marks the server (``mark``) if its record is still at ``revision``, the one ``seen`` was read
    at before the driver said the domain is gone: the record as written, or None when it changed
    meanwhile (left to whoever changed it) or is gone."""
    updated = state_pb2.InstanceRecord()
    updated.CopyFrom(seen)
    mark(updated.server, host, disk_remains)
    return updated if await instances.swap(store, seen.server.id, updated, revision) else None


async def define_again(driver: VirtDriver, host: str, spec: InstanceSpec) -> None:
    """Defines the vanished domain of the instance again from ``spec`` (the record's) over the disk
    that remains; FailedPrecondition(DOMAIN_NOT_FOUND) when the disk is gone too."""
    instance_id = spec.instance_id
    if not await driver.has_disk(instance_id):
        raise FailedPrecondition(
            f"server {instance_id} has no domain on {host} and its disk is gone: it cannot be recreated",
            reason="DOMAIN_NOT_FOUND",
        )
    log.warning("server %s: its domain vanished from %s; defining it again from its record", instance_id, host)
    await driver.redefine(spec)


def recreating(store: Store, driver: VirtDriver, host: str, spec_of: SpecOf, call: RecordCall) -> RecordCall:
    """``call`` (a start, a hard reboot) once the domain is defined again from the record if it
    vanished while its disk remains (``define_again``); the record's details are read only then."""

    async def recreated_then_call(record: state_pb2.InstanceRecord) -> None:
        instance_id = record.server.id
        if not await driver.has_domain(instance_id):
            await define_again(driver, host, spec_of(instance_id, await instances.with_details(store, record)))
        await call(record)

    return recreated_then_call

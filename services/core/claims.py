"""Resource claims on hosts: ``hosts/<host>/usage`` changed only by compare-and-swap on its mod
revision, so no two writers (several schedulers, or a scheduler and a release) can over-commit.

The invariant: a server holds a claim on host H exactly when its record names H. So a claim and
the record's host change together, in ONE transaction, everywhere: the scheduler claims and sets
``server.host`` at once (``services/scheduler/claimer.py``); ``unplace`` takes a server off a
host (a failed build); the delete removes the claim with the record (``release_ops`` in
``services/api/quotas/counted.delete_instance``); a resize changes the claim with the record
(``services/api/flows/resize_claims.with_claim``). ``services/api/admin/claim_audit.py`` checks it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from etcd3aio._protobuf import Compare, RequestOp

from services.core import instances, keys, retry
from services.core.errors import NotFound
from services.core.etcd import AMBIGUOUS, Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
RecordChange = Callable[[state_pb2.InstanceRecord], None]
BUILDING = servers_pb2.VmState.VM_STATE_BUILDING


@dataclass(frozen=True, slots=True)
class Totals:
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    instances: int = 0


def totals(usage: state_pb2.HostUsage) -> Totals:
    claims = usage.claims.values()
    return Totals(
        vcpus=sum(c.vcpus for c in claims),
        ram_mb=sum(c.ram_mb for c in claims),
        disk_gb=sum(c.disk_gb for c in claims),
        instances=len(usage.claims),
    )


async def read_usage(store: Store, host: str) -> tuple[state_pb2.HostUsage, int]:
    kv = await store.get(keys.host_usage(host))
    if kv is None:
        return state_pb2.HostUsage(), 0
    return state_pb2.HostUsage.FromString(kv.value), kv.mod_revision


async def try_claim(
    store: Store, host: str, claim: state_pb2.Claim, usage: state_pb2.HostUsage, mod_revision: int
) -> bool:
    """Adds ``claim`` to the usage read at ``mod_revision``; False if the usage changed since."""
    new = state_pb2.HostUsage()
    new.CopyFrom(usage)
    new.claims[claim.instance_id].CopyFrom(claim)
    return await store.swap(keys.host_usage(host), new.SerializeToString(), mod_revision)


async def release(store: Store, host: str, instance_id: str) -> bool:
    """Removes the instance's claim from the host; True if there was one. Only for a claim no
    record names (the audit's repair compares the record too): everything else goes through
    ``unplace`` or ``release_ops``."""

    async def attempt() -> bool | retry.Again:
        usage, revision = await read_usage(store, host)
        if instance_id not in usage.claims:
            return False
        del usage.claims[instance_id]
        return True if await store.swap(keys.host_usage(host), usage.SerializeToString(), revision) else retry.AGAIN

    return await retry.until_done(attempt, what=f"the usage of host {host}")


# ---- resizing a claim in place (a resize on the same host) -------------------------------------
CHECKED = ("ram_mb", "disk_gb")  # vCPUs are overcommitted by the scheduler's ratio: not checked here


def resize_hold(a: servers_pb2.ServerResources, b: servers_pb2.ServerResources) -> servers_pb2.ServerResources:
    """What a host holds while a resize of a server from ``a`` to ``b`` (or back) is not settled:
    the larger of the two in CPUs and RAM (one guest runs at a time), both disks (the old one is
    kept for a revert until the user confirms)."""
    return servers_pb2.ServerResources(
        vcpus=max(a.vcpus, b.vcpus), ram_mb=max(a.ram_mb, b.ram_mb), disk_gb=a.disk_gb + b.disk_gb
    )


def sized(claim: state_pb2.Claim, resources: servers_pb2.ServerResources, flavor_id: str) -> state_pb2.Claim:
    """``claim`` (or a new one) holding ``resources`` for ``flavor_id``, keeping who and when."""
    out = state_pb2.Claim()
    out.CopyFrom(claim)
    out.vcpus, out.ram_mb, out.disk_gb = resources.vcpus, resources.ram_mb, resources.disk_gb
    out.flavor_id = flavor_id
    return out


def shortfall(
    caps: state_pb2.HostCapabilities, usage: state_pb2.HostUsage, instance_id: str,
    wanted: servers_pb2.ServerResources,
) -> list[str]:  # fmt: skip
    """The resources (of ``CHECKED``) that would not fit if the instance's claim became ``wanted``:
    every other claim plus ``wanted`` against total minus reserved. A resource the claim does not
    grow is never short, so a host already over-committed by its operator can still shrink."""
    current = usage.claims.get(instance_id, state_pb2.Claim())
    short = []
    for name in CHECKED:
        want = getattr(wanted, name)
        if want <= getattr(current, name):
            continue
        others = sum(getattr(c, name) for i, c in usage.claims.items() if i != instance_id)
        room = getattr(caps, name) - getattr(caps, f"reserved_{name}")
        if others + want > room:
            short.append(name)
    return short


async def read_capabilities(store: Store, host: str) -> state_pb2.HostCapabilities | None:
    """What the host's compute reports (None while it is down: the key lives on its lease)."""
    kv = await store.get(keys.host_capabilities(host))
    return state_pb2.HostCapabilities.FromString(kv.value) if kv else None


# ---- the claim together with the record's host ---------------------------------------------
def claim_of(record: state_pb2.InstanceRecord) -> state_pb2.Claim:
    """The claim a placed server holds: its resources (``resize_hold`` of both sizes while a resize
    is not settled), its flavor and project."""
    server = record.server
    held = server.resources
    if record.HasField("resize"):
        held = resize_hold(server.resources, record.resize.old_resources)
    claim = state_pb2.Claim(instance_id=server.id, project_id=server.project_id, created_at=instances.now())
    return sized(claim, held, server.flavor_id)


@dataclass
class Writes:
    """Compares and ops for the caller's transaction."""

    compares: list[Compare] = field(default_factory=list)
    ops: list[RequestOp] = field(default_factory=list)

    def extend(self, other: Writes) -> None:
        self.compares.extend(other.compares)
        self.ops.extend(other.ops)


async def release_ops(store: Store, host: str, instance_id: str) -> Writes:
    """What releases the instance's claim on ``host`` inside the caller's transaction (which must
    also compare the instance record, so no claim can appear meanwhile): nothing without one."""
    usage, revision = await read_usage(store, host)
    if instance_id not in usage.claims:
        return Writes()
    del usage.claims[instance_id]
    key = keys.host_usage(host)
    return Writes([store.cmp_mod(key, revision)], [store.op_put(key, usage.SerializeToString())])


async def _placement_ops(store: Store, group_id: str, instance_id: str, host: str) -> Writes:
    """What forgets the group placement of the instance on ``host`` (it comes with the claim)."""
    key = keys.server_group(group_id)
    kv = await store.get(key)
    if kv is None:
        return Writes()
    group = state_pb2.ServerGroupRecord.FromString(kv.value)
    if group.placements.get(instance_id) != host:
        return Writes()
    del group.placements[instance_id]
    return Writes([store.cmp_mod(key, kv.mod_revision)], [store.op_put(key, group.SerializeToString())])


async def unplace(store: Store, instance_id: str, host: str, change: RecordChange) -> state_pb2.InstanceRecord | None:
    """Takes the server off ``host`` in ONE transaction: the record's host cleared (and ``change``
    applied to it, e.g. the host remembered as tried), the host's claim released, and the group
    placement there forgotten. Idempotent: a record that no longer names ``host`` is left as it is
    (an earlier attempt landed), though a claim still on ``host`` is released. Only a server still
    building is taken off: one the host brought up after all (a build that judged its compute down
    too early) stays where it runs, with its claim. Returns the record as stored, None if there is none."""
    key = keys.instance(instance_id)

    async def attempt() -> state_pb2.InstanceRecord | retry.Again | None:
        try:
            record: state_pb2.InstanceRecord | None
            record, revision = await instances.get(store, instance_id)
        except NotFound:
            record, revision = None, 0
        if record is not None and record.server.host == host and record.server.vm_state != BUILDING:
            log.warning("server %s is %s on %s: not taken off it", instance_id,
                        servers_pb2.VmState.Name(record.server.vm_state), host)  # fmt: skip
            return record
        writes = await release_ops(store, host, instance_id)
        if record is not None and record.server.host == host:
            if record.server.server_group_id:
                writes.extend(await _placement_ops(store, record.server.server_group_id, instance_id, host))
            record.server.host = ""
            change(record)
            instances.stamp(record)
            writes.compares.append(store.cmp_mod(key, revision))
            writes.ops.append(store.op_put(key, record.SerializeToString()))
        elif writes.ops:  # a claim the record does not name: released comparing the record
            writes.compares.append(store.cmp_mod(key, revision))
        if not writes.ops:
            return record
        try:
            ok, _ = await store.txn(writes.compares, writes.ops)
        except AMBIGUOUS as exc:  # read again: a landed attempt leaves nothing to do
            log.warning("taking server %s off %s: etcd's answer was lost (%s); reading back", instance_id, host, exc)
            return retry.AGAIN
        return record if ok else retry.AGAIN

    return await retry.until_done(attempt, what=f"server {instance_id} or host {host}")

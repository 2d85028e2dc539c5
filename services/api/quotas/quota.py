"""Quotas: what each project may hold, enforced in the same etcd transaction as the record it counts.

Every project has a usage record (``quota_usage/<project>``, a ``stratus.v1.QuotaSet``) that is
changed only together with the records it counts: the transaction that writes a server, an image,
a server group or a keypair also compares the usage record's mod revision and writes its new value.
A lost race (another charge of the same project landed first) is retried with the usage read
again, so two concurrent creates can never both fit under the last unit of a limit. Within one api
process the charges of a project also take turns (a lock), so they rarely race at all.

Limits are the settings' defaults (``[api.quota]``) overridden per project by an admin
(``quotas/<project>``); -1 is unlimited. A release (a delete) needs no limits and never fails for
quota; a charge that would take any resource above its limit raises ``QuotaExceeded`` (writing
nothing). Records of the system (project ``""``, e.g. the seeded image) are not counted.

How another manager charges inside its own transaction (keypairs, for instance)::

    created = await quotas.commit(project_id, {"keypairs": 1},
                                  [store.cmp_absent(key)], [store.op_put(key, value)])
    # False: one of *your* compares failed (nothing was written); QuotaExceeded: over the limit.

and the release on delete is ``{"keypairs": -1}`` with the delete's compares and ops. For a
transaction that must be assembled elsewhere, ``charge`` returns the compares and ops (and a
``Store.swap_many`` write) to add to it; ``moved`` tells whether a failed one lost to another charge.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from etcd3aio._protobuf import Compare, RequestOp

from services.api.settings import QuotaDefaults
from services.core import keys, retry
from services.core.errors import QuotaExceeded, Unavailable
from services.core.etcd import AMBIGUOUS, Store
from stratus.state.v1 import state_pb2
from stratus.v1 import quotas_pb2

log = logging.getLogger(__name__)

RESOURCES = ("instances", "cores", "ram_mb", "images", "image_bytes", "server_groups", "server_group_members",
             "keypairs")  # fmt: skip
# Counted per group, in the group's own record (its members), not in the project's usage record.
MEMBERS = "server_group_members"
UNLIMITED = -1
MAX_ATTEMPTS = 100  # lost races on a project's usage before giving up: every charge of the project writes it
Delta = Mapping[str, int]


# ---- pure ------------------------------------------------------------------------------------
def limits_of(defaults: Mapping[str, int], overrides: quotas_pb2.QuotaSet) -> quotas_pb2.QuotaSet:
    """The defaults with the admin's overrides (the fields present in ``overrides``) on top."""
    limits = quotas_pb2.QuotaSet(**{r: int(defaults[r]) for r in RESOURCES})
    limits.MergeFrom(overrides)
    return limits


def full(usage: quotas_pb2.QuotaSet) -> quotas_pb2.QuotaSet:
    """``usage`` with every resource present (0 where it had none)."""
    return quotas_pb2.QuotaSet(**{r: getattr(usage, r) for r in RESOURCES})


def check_delta(delta: Delta) -> dict[str, int]:
    """The non-zero changes of ``delta``; a resource that is no quota's is a programming error."""
    unknown = set(delta) - set(RESOURCES) | ({MEMBERS} & set(delta))
    if unknown:
        raise ValueError(f"not a project-wide quota resource: {', '.join(sorted(unknown))}")
    return {r: int(d) for r, d in delta.items() if d}


def over(limits: quotas_pb2.QuotaSet, usage: quotas_pb2.QuotaSet, delta: Delta) -> list[tuple[str, int, int, int]]:
    """(resource, limit, usage, requested) for each resource ``delta`` would take above its limit.
    Only growth is checked: a release always fits, even under a limit lowered below the usage."""
    out = []
    for resource, change in delta.items():
        limit, used = getattr(limits, resource), getattr(usage, resource)
        if change > 0 and limit != UNLIMITED and used + change > limit:
            out.append((resource, limit, used, change))
    return out


def applied(usage: quotas_pb2.QuotaSet, delta: Delta) -> quotas_pb2.QuotaSet:
    """``usage`` after ``delta``; never below 0 (a record written before quotas were kept is
    released without ever having been charged)."""
    new = full(usage)
    for resource, change in delta.items():
        value = getattr(new, resource) + change
        if value < 0:
            log.warning("quota usage of %s would go below 0 (%d); kept at 0", resource, value)
        setattr(new, resource, max(value, 0))
    return new


def difference(after: Delta, before: Delta) -> dict[str, int]:
    """What going from ``before`` to ``after`` charges (negative: gives back)."""
    changes = {r: after.get(r, 0) - before.get(r, 0) for r in set(after) | set(before)}
    return {r: change for r, change in changes.items() if change}


def instance_charge(record: state_pb2.InstanceRecord) -> dict[str, int]:
    """What a server holds of its project's quota: one instance, and its cores and RAM; while a
    resize is not settled, the larger of the old and the new size of each (the host holds both)."""
    size = record.server.resources
    cores, ram_mb = size.vcpus, size.ram_mb
    if record.HasField("resize"):
        cores, ram_mb = max(cores, record.resize.old_resources.vcpus), max(ram_mb, record.resize.old_resources.ram_mb)
    return {"instances": 1, "cores": cores, "ram_mb": ram_mb}


# ---- the usage record in a transaction ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Charge:
    """What to add to a transaction to change a project's usage: ``compares`` and ``ops``, or, for
    ``Store.swap_many``, ``writes`` (the compare on the limits is then left out). Empty for a
    change of nothing or of the system's records."""

    project_id: str = ""
    compares: list[Compare] = field(default_factory=list)
    ops: list[RequestOp] = field(default_factory=list)
    writes: list[tuple[str, bytes | None, int]] = field(default_factory=list)
    usage_revision: int = 0
    limits_revision: int | None = None


async def read_set(store: Store, key: str) -> tuple[quotas_pb2.QuotaSet, int]:
    kv = await store.get(key)
    return (quotas_pb2.QuotaSet.FromString(kv.value), kv.mod_revision) if kv else (quotas_pb2.QuotaSet(), 0)


async def prepare(store: Store, project_id: str, delta: Delta, defaults: Mapping[str, int] | None) -> Charge:
    """Reads the project's usage (and its limits when anything grows), refuses with QuotaExceeded
    when over, and returns the compares and ops that make the change if nothing moved meanwhile."""
    changes = check_delta(delta)
    if not project_id or not changes:
        return Charge()
    usage_key = keys.quota_usage(project_id)
    usage, usage_revision = await read_set(store, usage_key)
    compares = [store.cmp_mod(usage_key, usage_revision)]
    limits_revision = None
    if any(change > 0 for change in changes.values()):
        if defaults is None:
            raise ValueError(f"charging {changes} needs the quota limits")
        overrides, limits_revision = await read_set(store, keys.quota_limits(project_id))
        exceeded = over(limits_of(defaults, overrides), usage, changes)
        if exceeded:
            raise QuotaExceeded(project_id, exceeded)
        compares.append(store.cmp_mod(keys.quota_limits(project_id), limits_revision))
    value = applied(usage, changes).SerializeToString()
    return Charge(project_id, compares, [store.op_put(usage_key, value)], [(usage_key, value, usage_revision)],
                  usage_revision, limits_revision)  # fmt: skip


async def release(store: Store, project_id: str, delta: Delta) -> Charge:
    """A charge that only gives back (each change must be <= 0): needs no limits, never refused."""
    if any(change > 0 for change in delta.values()):
        raise ValueError(f"a release cannot grow the usage: {dict(delta)}")
    return await prepare(store, project_id, delta, None)


async def moved(store: Store, charge: Charge) -> bool:
    """After a failed transaction: whether the usage (or the limits) changed since ``charge`` read
    them, i.e. whether the transaction may have failed for them rather than for the caller's compares."""
    if not charge.project_id:
        return False
    usage = await store.get(keys.quota_usage(charge.project_id))
    if (usage.mod_revision if usage else 0) != charge.usage_revision:
        return True
    if charge.limits_revision is None:
        return False
    limits = await store.get(keys.quota_limits(charge.project_id))
    return (limits.mod_revision if limits else 0) != charge.limits_revision


class Quotas:
    """The quota ledger of the api: charges, releases and the limits of each project."""

    def __init__(self, store: Store, defaults: Mapping[str, int] | None = None) -> None:
        self.store = store
        self.defaults = dict(defaults if defaults is not None else QuotaDefaults().model_dump())
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, project_id: str) -> asyncio.Lock:
        lock = self._locks.get(project_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[project_id] = lock
        return lock

    async def limits(self, project_id: str) -> quotas_pb2.QuotaSet:
        overrides, _ = await read_set(self.store, keys.quota_limits(project_id))
        return limits_of(self.defaults, overrides)

    async def usage(self, project_id: str) -> quotas_pb2.QuotaSet:
        usage, _ = await read_set(self.store, keys.quota_usage(project_id))
        return full(usage)

    async def charge(self, project_id: str, delta: Delta) -> Charge:
        """The compares and ops to add to one's own transaction (QuotaExceeded when over)."""
        return await prepare(self.store, project_id, delta, self.defaults)

    async def commit(
        self, project_id: str, delta: Delta, compares: Sequence[Compare], ops: Sequence[RequestOp]
    ) -> bool:
        """One transaction: the caller's ``compares`` and ``ops`` with the project's usage changed
        by ``delta``. True when it landed; False when one of the caller's compares failed (nothing
        was written: re-read and decide). Lost races on the usage are retried here; QuotaExceeded
        when over a limit, Aborted when the usage keeps changing, Unavailable when etcd's answer
        was lost (the change may have landed; a retry with the same request_id is safe)."""

        async def attempt() -> bool | retry.Again:
            charge = await self.charge(project_id, delta)
            try:
                ok, _ = await self.store.txn([*compares, *charge.compares], [*ops, *charge.ops])
            except AMBIGUOUS as exc:
                raise Unavailable(f"etcd did not say whether the change landed ({type(exc).__name__}); "
                                  "look, or retry with the same request") from exc  # fmt: skip
            if ok:
                return True
            return retry.AGAIN if await moved(self.store, charge) else False

        async with self._lock(project_id):
            return await retry.until_done(attempt, what=f"the quota usage of project {project_id}",
                                          attempts=MAX_ATTEMPTS, reason="QUOTA_BUSY")  # fmt: skip

    async def check_members(self, project_id: str, members_after: int) -> None:
        """A server group of ``project_id`` may have ``members_after`` members (the group's record
        is compared in the transaction that adds the member, so this holds under races)."""
        limit = (await self.limits(project_id)).server_group_members
        if limit != UNLIMITED and members_after > limit:
            raise QuotaExceeded(project_id, [(MEMBERS, limit, members_after - 1, 1)])

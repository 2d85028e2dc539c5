"""Aggregates (admin): named sets of hosts with metadata the scheduler's filters and weighers read.

Each is a ``stratus.v1.Aggregate`` under ``aggregates/<id>``, with its name held unique by
``aggregate_names/<name>`` written in the same transaction. A change compares the mod revision of
every aggregate it read, so Nova's zone rule (a host is in at most one zone) holds even when two
admins change two aggregates at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from services.api.validation import Violations
from services.api.zones import AZ
from services.core import keys
from services.core.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.core.etcd import Store
from services.core.ids import new_id
from services.core.instances import now
from stratus.v1 import aggregates_pb2

META_KEY = re.compile(r"^[A-Za-z0-9_.:\- ]{1,255}$")
META_VALUE_MAX = 255
META_MAX_ITEMS = 128
MAX_SWAP_ATTEMPTS = 50

Aggregate = aggregates_pb2.Aggregate
Change = Callable[[Aggregate, list[Aggregate]], None]


def validate_metadata(metadata: Mapping[str, str], field: str, v: Violations) -> None:
    """Keys of letters, digits and ``_.:- ``; values up to 255 characters; a zone without ':'."""
    if len(metadata) > META_MAX_ITEMS:
        v.add(field, f"must have at most {META_MAX_ITEMS} entries")
    for key, value in metadata.items():
        if not META_KEY.match(key):
            v.add(f"{field}[{key!r}]", "keys must be 1 to 255 letters, digits, spaces or '_', '.', ':', '-'")
        if len(value) > META_VALUE_MAX:
            v.add(f"{field}[{key!r}]", f"values must be at most {META_VALUE_MAX} characters")
    zone = metadata.get(AZ, "")
    if ":" in zone:
        v.add(f"{field}[{AZ!r}]", "a zone name must not contain ':'")


def validate_create(aggregate: Aggregate, has_aggregate: bool) -> None:
    v = Violations()
    if not has_aggregate:
        v.add("aggregate", "is required")
    v.name("aggregate.name", aggregate.name)
    validate_metadata(aggregate.metadata, "aggregate.metadata", v)
    zone = aggregate.metadata.get(AZ, "")
    if aggregate.availability_zone and zone and zone != aggregate.availability_zone:
        v.add("aggregate.availability_zone", f"differs from metadata[{AZ!r}] ({zone!r})")
    if ":" in aggregate.availability_zone:
        v.add("aggregate.availability_zone", "a zone name must not contain ':'")
    if aggregate.hosts:
        v.add("aggregate.hosts", "add hosts with AddAggregateHost")
    v.raise_if_any()


def apply_metadata(aggregate: Aggregate, changes: Mapping[str, str]) -> None:
    """Sets keys, removes those given an empty value, and mirrors the zone into its field."""
    for key, value in changes.items():
        if value:
            aggregate.metadata[key] = value
        else:
            aggregate.metadata.pop(key, None)
    aggregate.availability_zone = aggregate.metadata.get(AZ, "")


def zone_conflicts(target: Aggregate, others: Iterable[Aggregate]) -> list[str]:
    """Nova's rule: a host of ``target`` may not be in another aggregate that names another zone."""
    zone = target.metadata.get(AZ, "")
    if not zone:
        return []
    hosts = set(target.hosts)
    return [
        f"host {host} is in aggregate {other.name!r} ({other.id}) with zone {other.metadata[AZ]!r}"
        for other in others
        if other.id != target.id and other.metadata.get(AZ, "") not in ("", zone)
        for host in sorted(hosts & set(other.hosts))
    ]


def check_zones(target: Aggregate, others: Iterable[Aggregate]) -> None:
    conflicts = zone_conflicts(target, others)
    if conflicts:
        raise FailedPrecondition(
            f"a host can be in only one availability zone, but {'; '.join(conflicts)}",
            reason="AVAILABILITY_ZONE_CONFLICT", metadata={"availability_zone": target.metadata[AZ]},
        )  # fmt: skip


async def load_all(store: Store) -> list[tuple[Aggregate, int]]:
    """Every aggregate with its mod revision, in id order."""
    kvs, _ = await store.get_prefix(keys.AGGREGATES)
    return [(Aggregate.FromString(kv.value), kv.mod_revision) for kv in kvs]


class AggregatesManager:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, aggregate: Aggregate, has_aggregate: bool = True) -> Aggregate:
        validate_create(aggregate, has_aggregate)
        new = Aggregate(id=new_id(), name=aggregate.name, created_at=now(), updated_at=now())
        zone = aggregate.availability_zone or aggregate.metadata.get(AZ, "")
        apply_metadata(new, {**aggregate.metadata, AZ: zone})
        ok, _ = await self._store.txn(
            [self._store.cmp_absent(keys.aggregate(new.id)), self._store.cmp_absent(keys.aggregate_name(new.name))],
            [
                self._store.op_put(keys.aggregate(new.id), new.SerializeToString()),
                self._store.op_put(keys.aggregate_name(new.name), new.id.encode()),
            ],
        )
        if not ok:
            raise AlreadyExists(f"an aggregate named {new.name!r} already exists", metadata={"name": new.name})
        return new

    async def get(self, aggregate_id: str) -> Aggregate:
        if not aggregate_id:
            raise InvalidArgument([("id", "is required")])
        kv = await self._store.get(keys.aggregate(aggregate_id))
        if kv is None:
            raise NotFound("aggregate", aggregate_id)
        return Aggregate.FromString(kv.value)

    async def list(self) -> Sequence[Aggregate]:
        return [a for a, _ in await load_all(self._store)]

    async def delete(self, aggregate_id: str) -> None:
        for _ in range(MAX_SWAP_ATTEMPTS):
            kv = await self._store.get(keys.aggregate(aggregate_id)) if aggregate_id else None
            if kv is None:
                raise NotFound("aggregate", aggregate_id)
            aggregate = Aggregate.FromString(kv.value)
            if aggregate.hosts:
                raise FailedPrecondition(
                    f"aggregate {aggregate.name!r} still has host(s) {', '.join(aggregate.hosts)}; remove them first",
                    reason="AGGREGATE_NOT_EMPTY", metadata={"hosts": str(len(aggregate.hosts))},
                )  # fmt: skip
            ok, _ = await self._store.txn(
                [self._store.cmp_mod(keys.aggregate(aggregate_id), kv.mod_revision)],
                [self._store.op_delete(keys.aggregate(aggregate_id)),
                 self._store.op_delete(keys.aggregate_name(aggregate.name))],
            )  # fmt: skip
            if ok:
                return
        raise Aborted(f"aggregate {aggregate_id} is changing too fast to delete; try again")

    async def set_metadata(self, aggregate_id: str, metadata: Mapping[str, str]) -> Aggregate:
        v = Violations()
        validate_metadata(metadata, "metadata", v)
        if not metadata:
            v.add("metadata", "is required: the keys to set (an empty value removes a key)")
        v.raise_if_any()

        def change(target: Aggregate, others: list[Aggregate]) -> None:
            apply_metadata(target, metadata)
            check_zones(target, others)

        return await self._change(aggregate_id, change)

    async def add_host(self, aggregate_id: str, host: str) -> Aggregate:
        if not host:
            raise InvalidArgument([("host", "is required")])
        await self._check_known_host(host)

        def change(target: Aggregate, others: list[Aggregate]) -> None:
            if host in target.hosts:
                raise AlreadyExists(f"host {host} is already in aggregate {target.name!r}", metadata={"host": host})
            target.hosts.append(host)
            check_zones(target, others)

        return await self._change(aggregate_id, change)

    async def remove_host(self, aggregate_id: str, host: str) -> Aggregate:
        if not host:
            raise InvalidArgument([("host", "is required")])

        def change(target: Aggregate, _others: list[Aggregate]) -> None:
            if host not in target.hosts:
                raise NotFound("aggregate host", host)
            kept = [h for h in target.hosts if h != host]
            del target.hosts[:]
            target.hosts.extend(kept)

        return await self._change(aggregate_id, change)

    async def _check_known_host(self, host: str) -> None:
        for key in (keys.host_capabilities(host), keys.host_usage(host), keys.service_seen("compute", host)):
            if await self._store.get(key) is not None:
                return
        raise NotFound("compute host", host)

    async def _change(self, aggregate_id: str, change: Change) -> Aggregate:
        """Applies ``change`` (which may raise to refuse) comparing every aggregate it saw."""
        if not aggregate_id:
            raise InvalidArgument([("id", "is required")])
        for _ in range(MAX_SWAP_ATTEMPTS):
            everything = await load_all(self._store)
            target = next((a for a, _ in everything if a.id == aggregate_id), None)
            if target is None:
                raise NotFound("aggregate", aggregate_id)
            change(target, [a for a, _ in everything if a.id != aggregate_id])
            target.updated_at.CopyFrom(now())
            compares = [self._store.cmp_mod(keys.aggregate(a.id), rev) for a, rev in everything]
            ok, _ = await self._store.txn(
                compares, [self._store.op_put(keys.aggregate(aggregate_id), target.SerializeToString())]
            )
            if ok:
                return target
        raise Aborted(f"aggregates are changing too fast; try again (aggregate {aggregate_id})")


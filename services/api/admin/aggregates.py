"""Aggregates (admin): named sets of hosts with metadata the scheduler's filters and weighers read.

Each is a ``stratus.v1.Aggregate`` under ``aggregates/<id>``, written in one transaction with what
depends on it: its name, held unique by ``aggregate_names/<name>``; its hosts' index entries,
``host_aggregates/<host>/<id>``; and, when it sets a zone, the ``aggregate_zones`` record (see
zones.py). Every change that could put a host in two zones (a zone set or changed, a host added to
an aggregate with a zone) checks Nova's rule (a host is in at most one zone) against the aggregates
that could break it, found through those indexes, and rewrites ``aggregate_zones`` comparing its mod
revision: such changes serialise on it, so the rule holds even when two admins change two aggregates
at once.

Aggregates from before the host index are indexed once at api start (``backfill``, paged and
idempotent), which also writes ``aggregate_zones`` if it is not there yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from etcd3aio._protobuf import Compare, RequestOp

from services.api import indexes, paging
from services.api.validation import Violations, page_size
from services.api.zones import AZ, ZoneMap, aggregates_by_id, read_zone_map
from services.core import keys, retry
from services.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.core.etcd import KV, Store
from services.core.ids import new_id
from services.core.instances import now
from services.core.message_limits import fill_page_async
from stratus.v1 import aggregates_pb2

META_KEY = re.compile(r"^[A-Za-z0-9_.:\- ]{1,255}$")
META_VALUE_MAX = 255
META_MAX_ITEMS = 128

Aggregate = aggregates_pb2.Aggregate
Change = Callable[[Aggregate], None]


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


def zone_of(aggregate: Aggregate) -> str:
    return aggregate.metadata.get(AZ, "")


def moves_zones(before: Aggregate | None, after: Aggregate | None) -> bool:
    """Whether a change could move a host between zones: its zone changes, or it gains hosts while
    it sets one. Such a change rewrites ``aggregate_zones`` (and so serialises on it)."""
    old, new = zone_of(before) if before else "", zone_of(after) if after else ""
    gained = bool(after and before and set(after.hosts) - set(before.hosts))
    return old != new or (bool(new) and gained)


def host_index_ops(store: Store, aggregate_id: str, before: Sequence[str], after: Sequence[str]) -> list[RequestOp]:
    """The ``host_aggregates/`` entries of hosts that joined (put) and left (deleted) the aggregate."""
    joined = [store.op_put(keys.host_aggregate(h, aggregate_id), b"") for h in after if h not in before]
    return joined + [store.op_delete(keys.host_aggregate(h, aggregate_id)) for h in before if h not in after]


def zone_writes(
    store: Store, zones: ZoneMap, before: Aggregate | None, after: Aggregate | None
) -> tuple[list[Compare], list[RequestOp]]:
    """The compare and the write of ``aggregate_zones`` a change needs (none when it moves no zone)."""
    if not moves_zones(before, after):
        return [], []
    aggregate_id = (after or before or Aggregate()).id
    changed = zones.with_zone(aggregate_id, zone_of(after) if after else "")
    return [store.cmp_mod(keys.AGGREGATE_ZONES, zones.revision)], [store.op_put(keys.AGGREGATE_ZONES, changed.encode())]


async def rivals(store: Store, before: Aggregate, target: Aggregate, zones: ZoneMap) -> list[Aggregate]:
    """The aggregates that set another zone and may share a host with ``target`` after a change:
    those of its new hosts (their index) when its zone stays, else every one setting another zone."""
    zone = zone_of(target)
    if not zone or not target.hosts or not moves_zones(before, target):
        return []
    if zone == zone_of(before):
        added = [h for h in target.hosts if h not in before.hosts]
        candidates = [i for h in added async for i in indexes.ids(store, keys.host_aggregates(h))]
    else:
        candidates = [i for z, ids in zones.zones.items() if z != zone for i in ids]
    wanted = sorted({i for i in candidates if i != target.id and zones.zone_of(i) not in ("", zone)})
    return await aggregates_by_id(store, wanted)


async def backfill(store: Store) -> int:
    """Indexes the hosts of aggregates written before ``host_aggregates/`` existed, and writes
    ``aggregate_zones`` if it is not there (once per deployment; idempotent)."""

    def entries(kv: KV) -> list[RequestOp]:
        aggregate = Aggregate.FromString(kv.value)
        return host_index_ops(store, aggregate.id, [], list(aggregate.hosts))

    indexed = await indexes.backfill(store, "host_aggregates", keys.AGGREGATES, entries)
    zones = await read_zone_map(store)
    if not zones.revision:  # worked out from the aggregates: written unless a change wrote it first
        await store.txn([store.cmp_absent(keys.AGGREGATE_ZONES)], [store.op_put(keys.AGGREGATE_ZONES, zones.encode())])
    return indexed


class AggregatesManager:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, aggregate: Aggregate, has_aggregate: bool = True) -> Aggregate:
        validate_create(aggregate, has_aggregate)
        new = Aggregate(id=new_id(), name=aggregate.name, created_at=now(), updated_at=now())
        zone = aggregate.availability_zone or aggregate.metadata.get(AZ, "")
        apply_metadata(new, {**aggregate.metadata, AZ: zone})

        async def attempt() -> Aggregate | retry.Again:
            zones = await read_zone_map(self._store) if zone else ZoneMap({})
            zone_compares, zone_ops = zone_writes(self._store, zones, None, new)
            ok, _ = await self._store.txn(
                [self._store.cmp_absent(keys.aggregate(new.id)), self._store.cmp_absent(keys.aggregate_name(new.name)),
                 *zone_compares],
                [self._store.op_put(keys.aggregate(new.id), new.SerializeToString()),
                 self._store.op_put(keys.aggregate_name(new.name), new.id.encode()), *zone_ops],
            )  # fmt: skip
            if ok:
                return new
            if await self._store.get(keys.aggregate_name(new.name)) is not None:
                raise AlreadyExists(f"an aggregate named {new.name!r} already exists", metadata={"name": new.name})
            return retry.AGAIN

        return await retry.until_done(attempt, what=f"the zone map (creating aggregate {new.name!r})")

    async def get(self, aggregate_id: str) -> Aggregate:
        if not aggregate_id:
            raise InvalidArgument([("id", "is required")])
        kv = await self._store.get(keys.aggregate(aggregate_id))
        if kv is None:
            raise NotFound("aggregate", aggregate_id)
        return Aggregate.FromString(kv.value)

    async def list(self, size: int = 0, token: str = "") -> aggregates_pb2.ListAggregatesResponse:
        """A page of the aggregates in id order: at most ``size`` (``page_size``) and about ``PAGE_BYTES``."""
        limit = page_size(size)
        after = paging.decode(token, keys.AGGREGATES)
        found = indexes.decoded(self._store, keys.AGGREGATES, after, Aggregate.FromString)
        aggregates, last = await fill_page_async(found, limit)
        return aggregates_pb2.ListAggregatesResponse(aggregates=aggregates, next_page_token=paging.next_token(last))

    async def delete(self, aggregate_id: str) -> None:
        async def attempt() -> retry.Again | None:
            kv = await self._store.get(keys.aggregate(aggregate_id)) if aggregate_id else None
            if kv is None:
                raise NotFound("aggregate", aggregate_id)
            aggregate = Aggregate.FromString(kv.value)
            if aggregate.hosts:
                raise FailedPrecondition(
                    f"aggregate {aggregate.name!r} still has host(s) {', '.join(aggregate.hosts)}; remove them first",
                    reason="AGGREGATE_NOT_EMPTY", metadata={"hosts": str(len(aggregate.hosts))},
                )  # fmt: skip
            zones = await read_zone_map(self._store) if zone_of(aggregate) else ZoneMap({})
            zone_compares, zone_ops = zone_writes(self._store, zones, aggregate, None)
            ok, _ = await self._store.txn(
                [self._store.cmp_mod(keys.aggregate(aggregate_id), kv.mod_revision), *zone_compares],
                [self._store.op_delete(keys.aggregate(aggregate_id)),
                 self._store.op_delete(keys.aggregate_name(aggregate.name)), *zone_ops],
            )  # fmt: skip
            return None if ok else retry.AGAIN

        await retry.until_done(attempt, what=f"aggregate {aggregate_id}")

    async def set_metadata(self, aggregate_id: str, metadata: Mapping[str, str]) -> Aggregate:
        v = Violations()
        validate_metadata(metadata, "metadata", v)
        if not metadata:
            v.add("metadata", "is required: the keys to set (an empty value removes a key)")
        v.raise_if_any()

        def change(target: Aggregate) -> None:
            apply_metadata(target, metadata)

        return await self._change(aggregate_id, change)

    async def add_host(self, aggregate_id: str, host: str) -> Aggregate:
        if not host:
            raise InvalidArgument([("host", "is required")])
        await self._check_known_host(host)

        def change(target: Aggregate) -> None:
            if host in target.hosts:
                raise AlreadyExists(f"host {host} is already in aggregate {target.name!r}", metadata={"host": host})
            target.hosts.append(host)

        return await self._change(aggregate_id, change)

    async def remove_host(self, aggregate_id: str, host: str) -> Aggregate:
        if not host:
            raise InvalidArgument([("host", "is required")])

        def change(target: Aggregate) -> None:
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
        """Applies ``change`` (which may raise to refuse), checks the zone rule against the rivals it
        could break it with, and writes the aggregate with its host index entries and (when it moves
        a zone) ``aggregate_zones``, comparing the aggregate and that record."""
        if not aggregate_id:
            raise InvalidArgument([("id", "is required")])
        store = self._store

        async def attempt() -> Aggregate | retry.Again:
            kv = await store.get(keys.aggregate(aggregate_id))
            if kv is None:
                raise NotFound("aggregate", aggregate_id)
            before, target = Aggregate.FromString(kv.value), Aggregate.FromString(kv.value)
            change(target)
            zones = await read_zone_map(store) if moves_zones(before, target) else ZoneMap({})
            check_zones(target, await rivals(store, before, target, zones))
            target.updated_at.CopyFrom(now())
            zone_compares, zone_ops = zone_writes(store, zones, before, target)
            ok, _ = await store.txn(
                [store.cmp_mod(kv.key, kv.mod_revision), *zone_compares],
                [store.op_put(kv.key, target.SerializeToString()), *zone_ops,
                 *host_index_ops(store, aggregate_id, before.hosts, target.hosts)],
            )  # fmt: skip
            return target if ok else retry.AGAIN

        return await retry.until_done(attempt, what=f"aggregate {aggregate_id} or the zone map")

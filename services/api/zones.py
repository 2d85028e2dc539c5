"""Availability zones: the zone each host is in, set by an aggregate's ``availability_zone``
metadata (the first aggregate by id that sets one, as the scheduler reads it) or reported by the
compute in its capabilities. Read by the RequestSpec (a server's zone must exist) and by Hosts,
never by reading every aggregate or every host:

- which aggregate sets which zone is one small record, ``aggregate_zones`` (``ZoneMap``), written
  in the transaction of every aggregate change that could move a host between zones (so those
  changes serialise on it; see aggregates.py); a host's aggregates are ``host_aggregates/<host>/``;
- the zones the computes report are ``zone_hosts/<zone>/<host>``, on each compute's lease.

Fallbacks for what was written before these existed: without ``aggregate_zones`` the map is worked
out from the aggregates, paged, until the api's start-up backfill (or the next zone change) writes
it; while no compute writes ``zone_hosts/`` at all (computes of an older version), the zones hosts
report are read from their capabilities, paged, at most once per ``HOST_ZONES_TTL_S`` per process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from services.api.indexes import get_many, ids
from services.core import keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2

AZ = "availability_zone"
ZONES_MOST = 1000  # distinct zones listed (in the message that names the known ones)
HOST_ZONES_TTL_S = 10.0

Aggregate = aggregates_pb2.Aggregate


@dataclass(frozen=True, slots=True)
class ZoneMap:
    """The ``aggregate_zones`` record: zone -> the ids of the aggregates that set it; ``revision``
    is its mod revision (0: not written yet), to compare-and-swap it."""

    zones: dict[str, list[str]]
    revision: int = 0

    def zone_of(self, aggregate_id: str) -> str:
        return next((zone for zone, ids in self.zones.items() if aggregate_id in ids), "")

    def with_zone(self, aggregate_id: str, zone: str) -> ZoneMap:
        """The map with the aggregate setting ``zone`` ("": none)."""
        zones = {z: [i for i in ids if i != aggregate_id] for z, ids in self.zones.items()}
        if zone:
            zones[zone] = sorted([*zones.get(zone, []), aggregate_id])
        return ZoneMap({z: ids for z, ids in sorted(zones.items()) if ids}, self.revision)

    def encode(self) -> bytes:
        return json.dumps(self.zones, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes, revision: int) -> ZoneMap:
        return cls({str(z): [str(i) for i in ids] for z, ids in json.loads(value).items()}, revision)


async def read_zone_map(store: Store) -> ZoneMap:
    kv = await store.get(keys.AGGREGATE_ZONES)
    if kv is not None:
        return ZoneMap.decode(kv.value, kv.mod_revision)
    found = ZoneMap({})
    async for page in store.scan(keys.AGGREGATES):  # not written yet: from the aggregates themselves
        for aggregate in (Aggregate.FromString(kv.value) for kv in page.kvs):
            found = found.with_zone(aggregate.id, aggregate.metadata.get(AZ, ""))
    return found


def host_zones(aggregates: Iterable[Aggregate]) -> dict[str, str]:
    """host -> the zone its aggregates give it: the first by id that sets one, as the scheduler reads it."""
    zones: dict[str, str] = {}
    for aggregate in sorted(aggregates, key=lambda a: a.id):
        zone = aggregate.metadata.get(AZ, "")
        for host in aggregate.hosts if zone else ():
            zones.setdefault(host, zone)
    return zones


async def zoned_aggregates(store: Store, zone_map: ZoneMap) -> list[Aggregate]:
    """The aggregates that set a zone."""
    return await aggregates_by_id(store, sorted(i for ids in zone_map.zones.values() for i in ids))


async def aggregates_by_id(store: Store, aggregate_ids: Iterable[str]) -> list[Aggregate]:
    """The aggregates of these ids that exist, in that order."""
    return [Aggregate.FromString(kv.value) for kv in await get_many(store, [keys.aggregate(i) for i in aggregate_ids])]


async def host_zone(store: Store, host: str, zone_map: ZoneMap) -> str:
    """The zone the host's aggregates give it ("" if none does): the first by id that sets one."""
    async for aggregate_id in ids(store, keys.host_aggregates(host)):
        zone = zone_map.zone_of(aggregate_id)
        if zone:
            return zone
    return ""


async def known_zones(store: Store) -> set[str]:
    """Every zone a compute host reports or an aggregate sets."""
    zones = set((await read_zone_map(store)).zones)
    if await store.count(keys.ZONE_HOSTS) == 0:
        return zones | await _reported_by_capabilities(store)
    start = ""
    while len(zones) < ZONES_MOST:  # one key of each zone: past a zone's hosts to the next zone
        page = await store.page(keys.ZONE_HOSTS, start_after=start, limit=1, keys_only=True)
        if not page.kvs:
            break
        zone, _ = keys.split_zone_host(page.kvs[0].key)
        zones.add(zone)
        start = keys.zone_hosts(zone)[:-1] + "0"  # '0' follows '/': past every key of this zone
    return zones


# (etcd endpoints, prefix) -> (when, zones): what the fallback read last, per deployment
_reported: dict[tuple[tuple[str, ...], str], tuple[float, set[str]]] = {}


async def _reported_by_capabilities(store: Store) -> set[str]:
    """The zones the hosts' capabilities report (for computes that write no ``zone_hosts/``)."""
    deployment = (tuple(store.endpoints), store.prefix)
    when, zones = _reported.get(deployment, (0.0, set()))
    if time.monotonic() - when < HOST_ZONES_TTL_S:
        return zones
    zones = set()
    async for page in store.scan(keys.HOSTS, keys_only=True):
        wanted = [kv.key for kv in page.kvs if keys.split_host(kv.key)[1] == keys.CAPABILITIES]
        for kv in await get_many(store, wanted):
            zones.add(state_pb2.HostCapabilities.FromString(kv.value).availability_zone)
    zones.discard("")
    _reported[deployment] = (time.monotonic(), zones)
    return zones

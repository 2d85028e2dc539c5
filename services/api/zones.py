"""Availability zones: the zone each host is in, set by an aggregate's ``availability_zone``
metadata (the first aggregate by id that sets one, as the scheduler reads it) or reported by the
compute in its capabilities. Read by the RequestSpec (a server's zone must exist) and by Hosts."""

from __future__ import annotations

from collections.abc import Iterable

from services.core import keys
from services.core.etcd import KV, Store
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2

AZ = "availability_zone"

Aggregate = aggregates_pb2.Aggregate


def aggregates_of(kvs: Iterable[KV]) -> list[Aggregate]:
    return [Aggregate.FromString(kv.value) for kv in kvs]


def host_zones(aggregates: Iterable[Aggregate]) -> dict[str, str]:
    """host -> the zone its aggregates give it: the first by id that sets one, as the scheduler reads it."""
    zones: dict[str, str] = {}
    for aggregate in sorted(aggregates, key=lambda a: a.id):
        zone = aggregate.metadata.get(AZ, "")
        for host in aggregate.hosts if zone else ():
            zones.setdefault(host, zone)
    return zones


async def known_zones(store: Store) -> set[str]:
    """Every zone a compute host reports or an aggregate sets."""
    aggregates, _ = await store.get_prefix(keys.AGGREGATES)
    zones = {a.metadata[AZ] for a in aggregates_of(aggregates) if a.metadata.get(AZ)}
    hosts, _ = await store.get_prefix(keys.HOSTS)
    for kv in hosts:
        if keys.split_host(kv.key)[1] == keys.CAPABILITIES:
            zone = state_pb2.HostCapabilities.FromString(kv.value).availability_zone
            if zone:
                zones.add(zone)
    return zones

"""Aggregates' indexes against a real etcd: a host's aggregates (``host_aggregates/``) and which
aggregate sets which zone (``aggregate_zones``) change in the aggregate's own transaction; the zone
rule holds through them, also under concurrent changes; GetHost and the known zones read them;
records from before them are indexed by the backfill."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from services.api import zones
from services.api.admin import aggregates
from services.api.admin.aggregates import AggregatesManager
from services.api.admin.hosts import AdminManager
from services.core import keys
from services.core.errors import FailedPrecondition, NotFound, Unavailable
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2

Aggregate = aggregates_pb2.Aggregate
AZ = zones.AZ


class NoServicegroup:
    def servicegroup(self) -> Any:
        raise Unavailable("no servicegroup service is running", reason="SERVICEGROUP_DOWN")


async def hosts(store: Store, *names: str, zone: str = "") -> None:
    for name in names:
        caps = state_pb2.HostCapabilities(host=name, vcpus=4, availability_zone=zone)
        await store.put(keys.host_capabilities(name), caps.SerializeToString())


async def under(store: Store, prefix: str) -> list[str]:
    kvs, _ = await store.read_all(prefix, most=1000)
    return [kv.key for kv in kvs]


async def zone_map(store: Store) -> dict[str, list[str]]:
    kv = await store.get(keys.AGGREGATE_ZONES)
    return zones.ZoneMap.decode(kv.value, kv.mod_revision).zones if kv else {}


async def test_host_entries_and_the_zone_map_change_with_the_aggregate(store: Store) -> None:
    await hosts(store, "h1", "h2")
    manager = AggregatesManager(store)
    a = await manager.create(Aggregate(name="a", availability_zone="az1"))
    assert await zone_map(store) == {"az1": [a.id]}
    await manager.add_host(a.id, "h1")
    await manager.add_host(a.id, "h2")
    assert await under(store, keys.HOST_AGGREGATES) == [
        keys.host_aggregate("h1", a.id),
        keys.host_aggregate("h2", a.id),
    ]
    await manager.set_metadata(a.id, {AZ: "az2"})
    assert await zone_map(store) == {"az2": [a.id]}
    await manager.remove_host(a.id, "h1")
    assert await under(store, keys.HOST_AGGREGATES) == [keys.host_aggregate("h2", a.id)]
    await manager.remove_host(a.id, "h2")
    await manager.delete(a.id)
    assert await under(store, keys.HOST_AGGREGATES) == [] and await zone_map(store) == {}


async def test_the_zone_rule_is_checked_through_the_indexes(store: Store) -> None:
    await hosts(store, "h1", "h2")
    manager = AggregatesManager(store)
    a = await manager.create(Aggregate(name="a", availability_zone="az1"))
    b = await manager.create(Aggregate(name="b", availability_zone="az2"))
    plain = await manager.create(Aggregate(name="plain"))
    await manager.add_host(a.id, "h1")
    await manager.add_host(plain.id, "h1")  # no zone: no conflict
    with pytest.raises(FailedPrecondition, match="host h1 is in aggregate 'a'"):
        await manager.add_host(b.id, "h1")
    await manager.add_host(b.id, "h2")
    with pytest.raises(FailedPrecondition, match="host h1 is in aggregate 'a'"):
        await manager.set_metadata(plain.id, {AZ: "az3"})
    with pytest.raises(FailedPrecondition, match="host h2 is in aggregate 'b'"):
        await manager.add_host(a.id, "h2")
    await manager.set_metadata(plain.id, {AZ: "az1"})  # the same zone as h1's other aggregate
    assert await zone_map(store) == {"az1": sorted([a.id, plain.id]), "az2": [b.id]}


async def test_concurrent_changes_cannot_put_a_host_in_two_zones(store: Store) -> None:
    await hosts(store, "h1")
    manager = AggregatesManager(store)
    a = await manager.create(Aggregate(name="a", availability_zone="az1"))
    b = await manager.create(Aggregate(name="b", availability_zone="az2"))
    results = await asyncio.gather(manager.add_host(a.id, "h1"), manager.add_host(b.id, "h1"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Aggregate", "FailedPrecondition"]
    await hosts(store, "h2")
    one, two = await manager.create(Aggregate(name="one")), await manager.create(Aggregate(name="two"))
    await manager.add_host(one.id, "h2")
    await manager.add_host(two.id, "h2")
    results = await asyncio.gather(
        manager.set_metadata(one.id, {AZ: "az3"}), manager.set_metadata(two.id, {AZ: "az4"}), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["Aggregate", "FailedPrecondition"]


async def test_get_host_reads_its_own_keys_and_its_aggregates_zone(store: Store) -> None:
    await hosts(store, "h1", "h2", zone="nova")
    manager = AggregatesManager(store)
    zoned = await manager.create(Aggregate(name="zoned", availability_zone="az1"))
    await manager.add_host(zoned.id, "h1")
    admin = AdminManager(store, cast(Any, NoServicegroup()))
    assert (await admin.get_host("h1")).availability_zone == "az1"
    assert (await admin.get_host("h2")).availability_zone == "nova"  # the zone it reports
    assert [(h.host, h.availability_zone) for h in (await admin.list_hosts()).hosts] == [("h1", "az1"), ("h2", "nova")]
    with pytest.raises(NotFound):
        await admin.get_host("h3")


async def test_known_zones_come_from_the_zone_map_and_the_zone_index(store: Store) -> None:
    await hosts(store, "h1", zone="reported")
    manager = AggregatesManager(store)
    await manager.create(Aggregate(name="a", availability_zone="az1"))
    assert await zones.known_zones(store) == {"az1", "reported"}  # no zone_hosts/ yet: the capabilities
    for zone, host in (("z/1", "h1"), ("z/1", "h2"), ("z2", "h3"), ("z", "h4")):
        await store.put(keys.zone_host(zone, host), b"")
    assert await zones.known_zones(store) == {"az1", "z/1", "z2", "z"}


async def test_the_backfill_indexes_aggregates_from_before_the_indexes(store: Store) -> None:
    old = Aggregate(id="old", name="old", hosts=["h1", "h2"], metadata={AZ: "az9"}, availability_zone="az9")
    await store.put(keys.aggregate(old.id), old.SerializeToString())
    assert await zones.known_zones(store) == {"az9"}  # worked out from the aggregates meanwhile
    assert await aggregates.backfill(store) == 1
    assert await under(store, keys.HOST_AGGREGATES) == [
        keys.host_aggregate("h1", "old"),
        keys.host_aggregate("h2", "old"),
    ]
    assert await zone_map(store) == {"az9": ["old"]}
    assert await aggregates.backfill(store) == 0  # once per deployment

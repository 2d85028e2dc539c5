"""ListHosts, ListServices and ListAggregates a page at a time against a real etcd (the servicegroup
down: the api reads the service records itself): every item once, in order, whatever the page size,
and a page bounded by bytes as well as count. Host names that go on with a character below '/'
('a-1' after 'a') are ordered by etcd differently from their names (``hosts/a-1/`` before
``hosts/a/``): the pages still come in name order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from services.api.admin import host_names
from services.api.admin.aggregates import AggregatesManager
from services.api.admin.hosts import AdminManager
from services.core import keys
from services.core.errors import Unavailable
from services.core.etcd import Store
from services.core.message_limits import ITEM_OVERHEAD, PAGE_BYTES
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, services_pb2

UP = services_pb2.SERVICE_STATE_UP
DOWN = services_pb2.SERVICE_STATE_DOWN
WITH_CAPS = ["a", "a-1-2", "a0", "b", "c"]
USAGE_ONLY = ["a.b", "b-x"]  # a compute that went away after hosting something
SEEN_ONLY = ["a-1", "ab", "b-x"]  # a compute seen once, with no records left
ALL_HOSTS = sorted({*WITH_CAPS, *USAGE_ONLY, *SEEN_ONLY})
Page = Callable[[int, str], Awaitable[tuple[list[str], str]]]


class NoServicegroup:
    def servicegroup(self) -> Any:
        raise Unavailable("no servicegroup service is running", reason="SERVICEGROUP_DOWN")


@pytest.fixture
async def admin(store: Store) -> AdminManager:
    for name in WITH_CAPS:
        caps = state_pb2.HostCapabilities(host=name, vcpus=4)
        await store.put(keys.host_capabilities(name), caps.SerializeToString())
        await store.put(keys.host_stats(name), b"")
    for name in USAGE_ONLY:
        await store.put(keys.host_usage(name), state_pb2.HostUsage().SerializeToString())
    for name in SEEN_ONLY:
        await store.put(keys.service_seen("compute", name), state_pb2.ServiceSeen().SerializeToString())
    await store.put(keys.service("compute", "b"), state_pb2.ServiceRecord(host="b").SerializeToString())
    await store.put(keys.service("api", "b"), state_pb2.ServiceRecord(host="b").SerializeToString())
    await store.put(keys.service_seen("scheduler", "a"), state_pb2.ServiceSeen().SerializeToString())
    return AdminManager(store, cast(Any, NoServicegroup()))


async def every_page(page: Page, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        names, token = await page(size, token)
        pages.append(names)
        assert len(pages) < 100, pages
        if not token:
            return pages


async def test_record_hosts_come_in_name_order_whatever_the_page(admin: AdminManager, store: Store) -> None:
    recorded = sorted({*WITH_CAPS, *USAGE_ONLY})
    for limit in (1, 2, 3, len(recorded), 50):
        found: list[str] = []
        more = True
        while more:
            names, more = await host_names.record_hosts(store, found[-1] if found else "", limit)
            assert len(names) <= limit and (names or not more)
            found += names
        assert found == recorded, limit


def test_merged_pages_stop_where_a_source_with_more_stops() -> None:
    assert host_names.merged_page([(["a", "c"], True), (["b", "d"], False)], 3) == (["a", "b", "c"], True)
    assert host_names.merged_page([(["a", "c"], False), (["b"], False)], 3) == (["a", "b", "c"], False)
    assert host_names.merged_page([(["a", "c"], False), (["b", "d"], False)], 3) == (["a", "b", "c"], True)
    assert host_names.merged_page([(["c"], True), (["a"], True)], 5) == (["a"], True)


async def test_hosts_page_through_every_host_once(admin: AdminManager) -> None:
    async def page(size: int, token: str) -> tuple[list[str], str]:
        reply = await admin.list_hosts(size, token)
        return [h.host for h in reply.hosts], reply.next_page_token

    for size in (1, 2, 3, 0):
        pages = await every_page(page, size)
        assert [h for p in pages for h in p] == ALL_HOSTS, size
        assert all(1 <= len(p) <= (size or 50) for p in pages), (size, pages)
    states = {h.host: h.state for h in (await admin.list_hosts()).hosts}
    assert states == {h: UP if h == "b" else DOWN for h in ALL_HOSTS}


async def test_services_page_through_every_service_once(admin: AdminManager) -> None:
    def names_of(binary: str = "", host: str = "") -> Page:
        async def page(size: int, token: str) -> tuple[list[str], str]:
            reply = await admin.services_page(binary, host, size, token)
            return [f"{s.binary}/{s.host}" for s in reply.services], reply.next_page_token

        return page

    every = ["api/b", *(f"compute/{h}" for h in ["a-1", "ab", "b", "b-x"]), "scheduler/a"]
    for size in (1, 2, 0):
        assert [n for p in await every_page(names_of(), size) for n in p] == every
        assert [n for p in await every_page(names_of("compute"), size) for n in p] == every[1:5]
        assert [n for p in await every_page(names_of(host="b"), size) for n in p] == ["api/b", "compute/b"]
        assert [n for p in await every_page(names_of("api", "b"), size) for n in p] == ["api/b"]


async def test_aggregates_pages_stop_at_about_a_mebibyte(store: Store) -> None:
    metadata = {f"key-{n:03}": "v" * 255 for n in range(128)}  # about 34 KiB an aggregate
    ids = [f"agg-{n:03}" for n in range(40)]
    for aggregate_id in ids:
        aggregate = aggregates_pb2.Aggregate(id=aggregate_id, name=aggregate_id, metadata=metadata)
        await store.put(keys.aggregate(aggregate_id), aggregate.SerializeToString())
    manager = AggregatesManager(store)
    first = await manager.list(1000)
    size = sum(a.ByteSize() + ITEM_OVERHEAD for a in first.aggregates)
    assert 0 < len(first.aggregates) < len(ids) and size <= PAGE_BYTES and first.next_page_token
    assert first.ByteSize() < 4 << 20  # what grpcurl and every default client accept

    async def page(size: int, token: str) -> tuple[list[str], str]:
        reply = await manager.list(size, token)
        return [a.id for a in reply.aggregates], reply.next_page_token

    for page_size in (1000, 7, 1):
        pages = await every_page(page, page_size)
        assert [i for p in pages for i in p] == ids and all(len(p) <= page_size for p in pages)

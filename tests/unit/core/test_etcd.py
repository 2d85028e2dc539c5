"""The etcd adapter against a real etcd: swaps, paging, resumable watch, lease session."""

from __future__ import annotations

import asyncio

import pytest

from services.core.etcd import Store, TooMany
from services.core.lease import LeaseSession
from services.core.watchcache import PrefixCache


async def test_swap_wins_once_and_loses_on_stale_revision(store: Store) -> None:
    assert await store.swap("k", b"v1", 0)
    assert not await store.swap("k", b"again", 0)
    kv = await store.get("k")
    assert kv is not None and kv.value == b"v1"
    assert await store.swap("k", b"v2", kv.mod_revision)
    assert not await store.swap("k", b"v3", kv.mod_revision)
    assert (await store.get("k")).value == b"v2"  # type: ignore[union-attr]


async def test_swap_many_deletes_atomically(store: Store) -> None:
    await store.put("a", b"1")
    a = await store.get("a")
    assert a is not None
    assert await store.swap_many([("a", None, a.mod_revision), ("b", b"2", 0)])
    assert await store.get("a") is None
    assert (await store.get("b")).value == b"2"  # type: ignore[union-attr]


async def test_a_page_resumes_after_a_key_at_its_revision(store: Store) -> None:
    for i in range(5):
        await store.put(f"p/{i}", b"x")
    first = await store.page("p/", limit=2)
    assert [kv.key for kv in first.kvs] == ["p/0", "p/1"] and first.more
    await store.put("p/5", b"later")
    rest = await store.page("p/", start_after="p/1", revision=first.revision)
    assert [kv.key for kv in rest.kvs] == ["p/2", "p/3", "p/4"] and not rest.more  # p/5 came after
    keys_only = await store.page("p/", keys_only=True)
    assert [kv.value for kv in keys_only.kvs] == [b""] * 6
    assert await store.count("p/") == 6


async def test_a_scan_reads_every_page_at_one_revision_sized_by_bytes(store: Store) -> None:
    for i in range(60):
        await store.put(f"big/{i:02}", b"x" * (200 << 10))  # 12 MiB in all; 200 KiB each: 5 fill PAGE_BYTES
    seen: list[str] = []
    sizes: list[int] = []
    revisions = set()
    async for page in store.scan("big/"):
        if not seen:
            await store.put("big/99", b"after the first page")
        seen.extend(kv.key for kv in page.kvs)
        sizes.append(len(page.kvs))
        revisions.add(page.revision)
    assert seen == [f"big/{i:02}" for i in range(60)] and len(revisions) == 1
    assert max(sizes[1:]) <= 6  # after the first page, pages shrink to about PAGE_BYTES


async def test_a_page_too_large_for_the_channel_is_read_again_in_halves(store: Store) -> None:
    for i in range(10):
        await store.put(f"huge/{i}", b"x" * (1 << 20))  # 10 MiB in all, above MAX_RECEIVE_BYTES
    page = await store.page("huge/", limit=10)
    assert 0 < len(page.kvs) < 10 and page.more
    with pytest.raises(TooMany):
        await store.read_all("huge/", most=5)


async def test_cache_follows_puts_and_deletes(store: Store) -> None:
    await store.put("c/one", b"1")
    cache: PrefixCache[bytes] = PrefixCache(store, "c/", bytes)
    seen: list[tuple[str, bool]] = []
    cache.subscribe(lambda key, old, new: seen.append((key, new is not None)))
    await cache.start()
    await store.put("c/two", b"2")
    await store.delete("c/one")
    for _ in range(100):
        if cache.get("c/two") == b"2" and cache.get("c/one") is None:
            break
        await asyncio.sleep(0.01)
    await cache.stop()
    assert cache.get("c/two") == b"2" and cache.get("c/one") is None
    assert seen == [("c/one", True), ("c/two", True), ("c/one", False)]


async def test_lease_session_keeps_key_alive_and_revokes_on_close(store: Store) -> None:
    session = LeaseSession(store, ttl_s=2)
    lease = await session.open()
    await store.put("alive", b"yes", lease=lease)
    await asyncio.sleep(3.0)  # longer than the TTL: only the keepalive stream keeps it
    assert await store.get("alive") is not None
    assert not session.done.is_set()
    await session.close()
    assert session.done.is_set()
    assert await store.get("alive") is None

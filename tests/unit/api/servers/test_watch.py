"""List then watch over etcd revisions against a real etcd: a watch from a listing's revision gets
exactly the changes after it, a reconnect from an event's revision neither loses nor repeats one,
pages of one listing agree, and compacted history is OUT_OF_RANGE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.api import paging
from services.api.servers.listing import list_servers
from services.api.servers.watch import watch_servers
from services.core import keys
from services.core.errors import InvalidArgument, NotFound, OutOfRange
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2 as pb

E = pb.ServerEventType
WAIT_S = 30.0  # a guard against a hang, never a timing assertion


def everyone(_server: pb.Server) -> bool:
    return True


async def put(store: Store, server_id: str, name: str, project: str = "p1") -> int:
    record = state_pb2.InstanceRecord(server=pb.Server(id=server_id, name=name, project_id=project))
    return await store.put(keys.instance(server_id), record.SerializeToString())


async def take(events: AsyncIterator[pb.ServerEvent], n: int) -> list[pb.ServerEvent]:
    async def collect() -> list[pb.ServerEvent]:
        return [await anext(events) for _ in range(n)]

    return await asyncio.wait_for(collect(), WAIT_S)


def seen(events: list[pb.ServerEvent]) -> list[tuple[str, str, int]]:
    return [(E.Name(e.type).removeprefix("SERVER_EVENT_TYPE_"), e.server.name, e.revision) for e in events]


async def test_watch_from_a_listing_revision_gets_exactly_the_changes_after_it(store: Store) -> None:
    await put(store, "a", "a1")
    await put(store, "b", "b1")
    listing = await list_servers(store, "", 100, everyone)
    assert [s.name for s in listing.servers] == ["a1", "b1"] and listing.revision > 0
    r1 = await put(store, "a", "a2")
    r2 = await put(store, "c", "c1")
    await store.delete(keys.instance("b"))
    r3 = (await list_servers(store, "", 100, everyone)).revision
    events = watch_servers(store, "", listing.revision, everyone)
    got = await take(events, 3)
    assert seen(got) == [("UPDATED", "a2", r1), ("CREATED", "c1", r2), ("DELETED", "b1", r3)]
    r4 = await put(store, "d", "d1")  # then live, after the replay
    assert seen(await take(events, 1)) == [("CREATED", "d1", r4)]
    await events.aclose()


async def test_a_reconnect_from_the_last_event_seen_loses_and_repeats_nothing(store: Store) -> None:
    start = await put(store, "a", "v0")
    first = watch_servers(store, "", start, everyone)
    revisions = [await put(store, "a", f"v{i}") for i in range(1, 4)]
    got = await take(first, 2)
    await first.aclose()  # the connection breaks after two events
    revisions += [await put(store, "a", f"v{i}") for i in range(4, 6)]
    again = watch_servers(store, "", got[-1].revision, everyone)
    got += await take(again, 3)
    await again.aclose()
    assert [e.server.name for e in got] == ["v1", "v2", "v3", "v4", "v5"]
    assert [e.revision for e in got] == revisions


async def test_the_watch_of_one_server_starts_with_its_state_or_replays_from_a_revision(store: Store) -> None:
    await put(store, "a", "a1")
    await put(store, "ab", "other")  # shares the key prefix of "a"
    now = watch_servers(store, "a", 0, everyone)
    current = (await take(now, 1))[0]
    assert current.server.name == "a1" and current.type == E.SERVER_EVENT_TYPE_UPDATED
    await now.aclose()
    await put(store, "ab", "other2")
    await put(store, "a", "a2")
    await store.delete(keys.instance("a"))
    # deleted since: still watchable from a revision it was there at, and the stream ends at the delete
    replay = [e async for e in watch_servers(store, "a", current.revision, everyone)]
    assert [(E.Name(e.type), e.server.name) for e in replay] == [
        ("SERVER_EVENT_TYPE_UPDATED", "a2"),
        ("SERVER_EVENT_TYPE_DELETED", "a2"),
    ]
    with pytest.raises(NotFound):
        await anext(watch_servers(store, "a", 0, everyone))
    with pytest.raises(NotFound):  # there at that revision, but not the caller's
        await anext(watch_servers(store, "a", current.revision, lambda s: s.project_id == "p2"))


async def test_the_watch_keeps_the_scope(store: Store) -> None:
    start = await put(store, "a", "mine", project="p1")
    await put(store, "b", "theirs", project="p2")
    r = await put(store, "c", "mine too", project="p1")
    events = watch_servers(store, "", start, lambda s: s.project_id == "p1")
    assert seen(await take(events, 1)) == [("CREATED", "mine too", r)]
    await events.aclose()


async def test_pages_of_one_listing_read_at_its_first_revision(store: Store) -> None:
    for name in "abcde":
        await put(store, name, f"{name}1")
    first = await list_servers(store, "", 2, everyone)
    assert [s.name for s in first.servers] == ["a1", "b1"] and first.next_page_token
    await put(store, "c", "c2")
    await store.delete(keys.instance("d"))
    await put(store, "f", "f1")
    second = await list_servers(store, first.next_page_token, 2, everyone)
    third = await list_servers(store, second.next_page_token, 2, everyone)
    assert [s.name for s in [*second.servers, *third.servers]] == ["c1", "d1", "e1"]
    assert first.revision == second.revision == third.revision and not third.next_page_token
    fresh = await list_servers(store, "", 10, everyone)
    assert [s.name for s in fresh.servers] == ["a1", "b1", "c2", "e1", "f1"] and fresh.revision > first.revision


async def test_compacted_history_is_out_of_range_with_a_hint_to_list_again(store: Store) -> None:
    await put(store, "a", "a1")
    await put(store, "b", "b1")
    old = await list_servers(store, "", 1, everyone)
    await store.delete(keys.instance("b"))
    now = await put(store, "a", "a2")
    await store.compact(now)
    with pytest.raises(OutOfRange) as watch_err:
        await anext(watch_servers(store, "", old.revision, everyone))
    assert watch_err.value.reason == "REVISION_COMPACTED" and "list" in watch_err.value.message
    assert watch_err.value.metadata == {"revision": str(old.revision), "compact_revision": str(now)}
    with pytest.raises(OutOfRange) as page_err:
        await list_servers(store, old.next_page_token, 1, everyone)
    assert page_err.value.reason == "REVISION_COMPACTED"
    with pytest.raises(OutOfRange):  # one server gone since a compacted revision: no replay either
        await anext(watch_servers(store, "b", old.revision, everyone))
    events = watch_servers(store, "", now, everyone)  # the compact revision itself is still kept
    r = await put(store, "a", "a3")
    assert seen(await take(events, 1)) == [("UPDATED", "a3", r)]
    await events.aclose()


async def test_a_revision_out_of_bounds_is_invalid(store: Store) -> None:
    now = await put(store, "a", "a1")
    for bad in (now + 1000, -1):
        with pytest.raises(InvalidArgument) as err:
            await anext(watch_servers(store, "", bad, everyone))
        assert err.value.violations[0][0] == "revision"
    with pytest.raises(InvalidArgument):  # a forged token at a revision etcd has not reached
        await list_servers(store, paging.encode_at(keys.instance("a"), now + 1000), 1, everyone)


def test_page_tokens_carry_the_revision_and_old_tokens_still_work() -> None:
    token = paging.encode_at("instances/x", 42)
    assert paging.decode_at(token, "instances/") == ("instances/x", 42)
    assert paging.decode_at(paging.encode("instances/x"), "instances/") == ("instances/x", 0)
    assert paging.decode_at("", "instances/") == ("", 0)
    for forged in ("0@instances/x", "x@instances/x", "42@flavors/x", "99999999999999999999@instances/x"):
        with pytest.raises(InvalidArgument):
            paging.decode_at(paging.encode(forged), "instances/")

"""Server records sized for their readers, against a real etcd: the write-once parts of a large
server live apart, lists stay small and bounded in bytes, a project's listing reads its index."""

from __future__ import annotations

from typing import Any

import pytest

from services.api.servers.listing import backfill, list_servers
from services.core import instances, keys
from services.core.errors import InvalidArgument
from services.core.etcd import Store
from services.core.message_limits import PAGE_BYTES
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2
from tests.unit.api.server_groups.test_groups_store import ADMIN, ALICE, BOB, Api, api, as_user  # noqa: F401

BIG = {f"key-{i:03}-" + "k" * 240: "v" * 1024 for i in range(128)}


def create(
    name: str, metadata: dict[str, str] | None = None, user_data: bytes = b""
) -> servers_pb2.CreateServerRequest:
    server = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", metadata=metadata or {},
                                user_data=user_data)  # fmt: skip
    return servers_pb2.CreateServerRequest(server=server)


async def raw(store: Store, instance_id: str) -> bytes:
    kv = await store.get(keys.instance(instance_id))
    assert kv is not None
    return kv.value


async def test_a_large_server_keeps_its_record_small_and_gets_back_whole(api: Api, as_user: Any) -> None:  # noqa: F811
    as_user(ALICE)
    made = await api.servers.create(create("big", BIG, b"#cloud-config\n" + b"x" * 60_000))
    assert made.metadata == BIG and len(made.user_data) > 60_000 and not made.metadata_omitted
    assert len(await raw(api.store, made.id)) < 1024  # what lists, watches, scans and claims read
    got = await api.servers.get(made.id)
    assert got.metadata == BIG and got.user_data == made.user_data and not got.metadata_omitted
    listed = (await api.servers.list(servers_pb2.ListServersRequest())).servers
    assert [(s.id, dict(s.metadata), s.user_data, s.metadata_omitted) for s in listed] == [(made.id, {}, b"", True)]
    small = await api.servers.create(create("small", {"role": "web"}, b"hello"))
    assert not state_pb2.InstanceRecord.FromString(await raw(api.store, small.id)).server.metadata_omitted
    by_name = {s.name: s for s in (await api.servers.list(servers_pb2.ListServersRequest())).servers}
    assert dict(by_name["small"].metadata) == {"role": "web"} and not by_name["small"].metadata_omitted
    record, _ = await instances.get(api.store, made.id)
    await instances.delete(api.store, made.id)
    for gone in (keys.instance_details(made.id), keys.project_instance("alice", made.id)):
        assert await api.store.get(gone) is None
    assert record.details_apart


async def test_a_create_larger_than_the_whole_request_bound_names_the_server(api: Api, as_user: Any) -> None:  # noqa: F811
    as_user(ALICE)
    hints = {f"hint-{i:03}-" + "h" * 240: "v" * 1024 for i in range(128)}
    req = create("huge", BIG, b"x" * 65536)
    req.server.scheduler_hints.update(hints)
    with pytest.raises(InvalidArgument) as err:
        await api.servers.create(req)
    assert [field for field, _ in err.value.violations] == ["server"]
    assert await api.store.count(keys.INSTANCES) == 0


async def test_each_project_lists_its_own_through_its_index(api: Api, as_user: Any) -> None:  # noqa: F811
    as_user(ALICE)
    mine = {(await api.servers.create(create(f"a{i}"))).id for i in range(3)}
    as_user(BOB)
    theirs = {(await api.servers.create(create(f"b{i}"))).id for i in range(2)}
    assert {s.id for s in (await api.servers.list(servers_pb2.ListServersRequest())).servers} == theirs
    as_user(ALICE)
    first = await api.servers.list(servers_pb2.ListServersRequest(page_size=2))
    rest = await api.servers.list(servers_pb2.ListServersRequest(page_size=2, page_token=first.next_page_token))
    assert {s.id for s in [*first.servers, *rest.servers]} == mine and not rest.next_page_token
    with pytest.raises(InvalidArgument):  # a page token of another listing
        await api.servers.list(servers_pb2.ListServersRequest(all_projects=False, page_token="QUJD"))
    as_user(ADMIN)
    every = await api.servers.list(servers_pb2.ListServersRequest(all_projects=True))
    assert {s.id for s in every.servers} == mine | theirs


async def test_pages_stop_at_their_byte_bound(store: Store) -> None:
    for i in range(12):  # records written before the details were kept apart: 200 KiB each
        server = servers_pb2.Server(id=f"old-{i:02}", project_id="p", metadata={"blob": "x" * (200 << 10)})
        await store.put(keys.instance(server.id), state_pb2.InstanceRecord(server=server).SerializeToString())
    token, seen, sizes = "", list[str](), list[int]()
    while True:
        page = await list_servers(store, token, 1000, lambda _s: True)
        seen.extend(s.id for s in page.servers)
        sizes.append(page.ByteSize())
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"old-{i:02}" for i in range(12)]
    assert len(sizes) > 1 and max(sizes) <= PAGE_BYTES + (210 << 10)


async def test_the_backfill_indexes_records_written_before_the_index(store: Store) -> None:
    server = servers_pb2.Server(id="s1", project_id="p1")
    await store.put(keys.instance("s1"), state_pb2.InstanceRecord(server=server).SerializeToString())
    assert await backfill(store) == 1
    assert await store.get(keys.project_instance("p1", "s1")) is not None
    listing = await list_servers(store, "", 10, lambda _s: True, "p1")
    assert [s.id for s in listing.servers] == ["s1"]
    assert await backfill(store) == 0  # done once per deployment

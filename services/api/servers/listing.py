"""ListServers: pages bounded by count and by bytes, every page of a listing read at its first
page's revision. A project's servers are found through its index (``project_instances/``), so a
member's listing reads only its own project's records; an admin's listing of every project pages
through ``instances/`` itself."""

from __future__ import annotations

from collections.abc import Callable

from etcd3aio._protobuf import RequestOp

from services.api import indexes, paging
from services.core import keys
from services.core.errors import InvalidArgument, OutOfRange
from services.core.etcd import KV, Page, Store
from services.core.message_limits import PageFill
from services.core.watch import FutureRevision, WatchCompacted
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

BATCH = 256
Visible = Callable[[servers_pb2.Server], bool]
# (the key a page resumes after, the server at that key or None when it is gone)
Found = list[tuple[str, "servers_pb2.Server | None"]]


def listed(server: servers_pb2.Server, keep_user_data: bool = False) -> servers_pb2.Server:
    """A server as lists and watches of many carry it: without its user_data (a record written
    before the details were kept apart may still hold it); GetServer and the watch of one server
    keep it."""
    if not keep_user_data:
        server.ClearField("user_data")
    return server


def compacted(revision: int, compact_revision: int = 0) -> OutOfRange:
    kept = f" (etcd keeps history from revision {compact_revision} on)" if compact_revision else ""
    metadata = {"revision": str(revision)}
    if compact_revision:
        metadata["compact_revision"] = str(compact_revision)
    return OutOfRange(f"revision {revision} is too old to replay{kept}: list the servers again (ListServers "
                      "without page_token) and watch from the revision that listing returns",
                      reason="REVISION_COMPACTED", metadata=metadata)  # fmt: skip


async def list_servers(
    store: Store, token: str, limit: int, keep: Visible, project_id: str = ""
) -> servers_pb2.ListServersResponse:
    """One page of the servers ``keep`` accepts (of ``project_id`` only, when given): at most
    ``limit`` of them and about ``PAGE_BYTES`` (always at least one)."""
    prefix = keys.project_instances(project_id) if project_id else keys.INSTANCES
    after, revision = paging.decode_at(token, prefix)
    page: PageFill[servers_pb2.Server] = PageFill(limit)
    while True:
        size = min(BATCH, limit + 1) if project_id else BATCH  # each index key costs a read of its record
        found, revision, more = await _batch(store, prefix, after, revision, size, by_index=bool(project_id))
        for cursor, server in found:
            if server is not None and keep(server) and not page.take(cursor, listed(server)):
                token = paging.encode_at(after, revision)
                return servers_pb2.ListServersResponse(servers=page.items, next_page_token=token, revision=revision)
            after = cursor
        if not more:
            return servers_pb2.ListServersResponse(servers=page.items, revision=revision)


async def _batch(
    store: Store, prefix: str, after: str, revision: int, size: int, by_index: bool
) -> tuple[Found, int, bool]:
    try:
        page = await store.page(prefix, start_after=after, limit=size, revision=revision, keys_only=by_index)
        if not by_index:
            return [(kv.key, _server(kv.value)) for kv in page.kvs], page.revision, page.more
        return await _through_index(store, page), page.revision, page.more
    except WatchCompacted as exc:
        raise compacted(revision) from exc
    except FutureRevision as exc:
        raise InvalidArgument([("page_token", "is not a token this API returned")]) from exc


async def _through_index(store: Store, page: Page) -> Found:
    """The records an index page names, read at the page's revision (an index key whose record
    is gone at that revision, e.g. left by an interrupted backfill, is skipped)."""
    ids = [kv.key.rsplit("/", 1)[-1] for kv in page.kvs]
    records = await store.get_many([keys.instance(i) for i in ids], revision=page.revision)
    return [(kv.key, _server(rec.value) if rec else None) for kv, rec in zip(page.kvs, records, strict=True)]


def _server(value: bytes) -> servers_pb2.Server:
    return state_pb2.InstanceRecord.FromString(value).server


async def backfill(store: Store) -> int:
    """The project index for records written before it existed (once per deployment; indexes.py)."""

    def entry(kv: KV) -> list[RequestOp]:
        server = state_pb2.InstanceRecord.FromString(kv.value).server
        return [store.op_put(keys.project_instance(server.project_id, server.id), b"")]

    return await indexes.backfill(store, "project_instances", keys.INSTANCES, entry)

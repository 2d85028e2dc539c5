"""ListServers and WatchServers over etcd revisions, so that a client can list, then watch, and
neither lose nor repeat a change.

A listing reads at one revision and says which; its later pages carry that revision in their
page_token and read at it too. A watch starts after any revision etcd still keeps, replays every
change since then in order and goes on live; each event carries its change's revision, so a client
that reconnects resumes after the last one it saw. History that etcd has compacted is OUT_OF_RANGE
(reason REVISION_COMPACTED): the client lists again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from services.api import paging
from services.api.validation import Violations
from services.core import instances, keys
from services.core.errors import InvalidArgument, NotFound, OutOfRange
from services.core.etcd import KV, Store
from services.core.watch import FutureRevision, WatchCompacted
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
E = servers_pb2.ServerEventType
LIST_BATCH = 500
REVISION_MAX = 2**63 - 1
Visible = Callable[[servers_pb2.Server], bool]


def listed(server: servers_pb2.Server, keep_user_data: bool = False) -> servers_pb2.Server:
    """A server as lists and watches of many carry it: without its user_data (up to 64 KiB each,
    which a page of 1000 would multiply past gRPC's message limit); GetServer and the watch of one
    server keep it."""
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


# ---- list -----------------------------------------------------------------------------------
async def list_servers(store: Store, token: str, limit: int, keep: Visible) -> servers_pb2.ListServersResponse:
    """One page of the servers ``keep`` accepts, read at the revision of the listing's first page."""
    after, revision = paging.decode_at(token, keys.INSTANCES)
    page: list[servers_pb2.Server] = []
    while True:
        kvs, revision = await _read(store, after, revision)
        for kv in kvs:
            server = state_pb2.InstanceRecord.FromString(kv.value).server
            if keep(server):
                if len(page) == limit:
                    token = paging.encode_at(after, revision)
                    return servers_pb2.ListServersResponse(servers=page, next_page_token=token, revision=revision)
                page.append(listed(server))
            after = kv.key
        if len(kvs) < LIST_BATCH:
            return servers_pb2.ListServersResponse(servers=page, revision=revision)


async def _read(store: Store, after: str, revision: int) -> tuple[list[KV], int]:
    try:
        return await store.get_prefix(keys.INSTANCES, start_after=after, limit=LIST_BATCH, revision=revision)
    except WatchCompacted as exc:
        raise compacted(revision) from exc
    except FutureRevision as exc:
        raise InvalidArgument([("page_token", "is not a token this API returned")]) from exc


# ---- watch ----------------------------------------------------------------------------------
async def watch_servers(
    store: Store, server_id: str, after: int, visible: Visible
) -> AsyncGenerator[servers_pb2.ServerEvent, None]:
    """The changes to one server (``server_id``) or to all that ``visible`` accepts, after revision
    ``after`` (0: from now; the watch of one server then starts with its current state)."""
    v = Violations()
    v.int_range("revision", after, 0, REVISION_MAX)
    v.raise_if_any()
    key = keys.instance(server_id) if server_id else keys.INSTANCES
    kv, now = await store.get_with_revision(key)
    if after > now:
        raise InvalidArgument([("revision", f"{after} is ahead of the latest revision {now}: pass a revision "
                                            "that ListServers or a ServerEvent returned")])  # fmt: skip
    if server_id:
        if kv is None and after:  # gone since: it was still there at `after` if the client listed it
            kv = await _at(store, key, after)
        if kv is None or not visible(state_pb2.InstanceRecord.FromString(kv.value).server):
            raise NotFound("server", server_id)
        if not after:
            current = state_pb2.InstanceRecord.FromString(kv.value).server
            yield servers_pb2.ServerEvent(server=current, type=E.SERVER_EVENT_TYPE_UPDATED, revision=now)
    last = after or now
    try:
        async for batch in store.watch_prefix(key, last + 1):
            for ev in batch.events:
                last = ev.mod_revision
                if server_id and ev.key != key:
                    continue
                event = _event(ev.value, ev.prev_value, ev.deleted, keep_user_data=bool(server_id))
                if event is not None and visible(event.server):
                    event.revision = ev.mod_revision
                    yield event
                    if server_id and event.type == E.SERVER_EVENT_TYPE_DELETED:
                        return
    except WatchCompacted as exc:
        raise compacted(last, exc.compact_revision) from exc


async def _at(store: Store, key: str, revision: int) -> KV | None:
    try:
        return await store.get(key, revision=revision)
    except WatchCompacted as exc:
        raise compacted(revision) from exc


def _event(value: bytes, prev: bytes | None, deleted: bool, keep_user_data: bool) -> servers_pb2.ServerEvent | None:
    if deleted:
        if prev is None:
            return None
        server = state_pb2.InstanceRecord.FromString(prev).server
        server.status = servers_pb2.ServerStatus.SERVER_STATUS_DELETED
        server.vm_state = V.VM_STATE_DELETED
        server.task_state = T.TASK_STATE_UNSPECIFIED
        server.power_state = servers_pb2.PowerState.POWER_STATE_NOSTATE  # the domain is gone
        server.updated_at.CopyFrom(instances.now())
        return servers_pb2.ServerEvent(server=listed(server, keep_user_data), type=E.SERVER_EVENT_TYPE_DELETED)
    kind = E.SERVER_EVENT_TYPE_UPDATED if prev is not None else E.SERVER_EVENT_TYPE_CREATED
    server = state_pb2.InstanceRecord.FromString(value).server
    return servers_pb2.ServerEvent(server=listed(server, keep_user_data), type=kind)

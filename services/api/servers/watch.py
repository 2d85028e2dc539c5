"""WatchServers over etcd revisions, so that a client can list (listing.py), then watch, and
neither lose nor repeat a change.

A listing reads at one revision and says which; its later pages carry that revision in their
page_token and read at it too. A watch starts after any revision etcd still keeps, replays every
change since then in order and goes on live; each event carries its change's revision, so a client
that reconnects resumes after the last one it saw. History that etcd has compacted is OUT_OF_RANGE
(reason REVISION_COMPACTED): the client lists again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from services.api.servers.listing import compacted, listed
from services.api.validation import Violations
from services.core import instances, keys
from services.core.errors import InvalidArgument, NotFound
from services.core.etcd import KV, Store
from services.core.watch import WatchCompacted
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
E = servers_pb2.ServerEventType
REVISION_MAX = 2**63 - 1
Visible = Callable[[servers_pb2.Server], bool]


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
    details: state_pb2.InstanceDetails | None = None
    if server_id:
        if kv is None and after:  # gone since: it was still there at `after` if the client listed it
            kv = await _at(store, key, after)
        if kv is None or not visible(state_pb2.InstanceRecord.FromString(kv.value).server):
            raise NotFound("server", server_id)
        details = await _details(store, server_id, kv)
        if not after:
            current = whole(state_pb2.InstanceRecord.FromString(kv.value).server, details)
            yield servers_pb2.ServerEvent(server=current, type=E.SERVER_EVENT_TYPE_UPDATED, revision=now)
    last = after or now
    try:
        async for batch in store.watch_prefix(key, last + 1, prev=True):
            for ev in batch.events:
                last = ev.mod_revision
                if server_id and ev.key != key:
                    continue
                event = _event(ev.value, ev.prev_value, ev.deleted, keep_user_data=bool(server_id))
                if event is not None and server_id:
                    whole(event.server, details)
                if event is not None and visible(event.server):
                    event.revision = ev.mod_revision
                    yield event
                    if server_id and event.type == E.SERVER_EVENT_TYPE_DELETED:
                        return
    except WatchCompacted as exc:
        raise compacted(last, exc.compact_revision) from exc


async def _details(store: Store, server_id: str, kv: KV) -> state_pb2.InstanceDetails | None:
    """The details of the server whose record ``kv`` is, read where they still are."""
    if not state_pb2.InstanceRecord.FromString(kv.value).details_apart:
        return None
    found = await instances.read_details(store, server_id)
    if found is None:  # deleted since: they were there with the record
        try:
            found = await instances.read_details(store, server_id, revision=kv.mod_revision)
        except WatchCompacted:
            return None
    return found


def whole(server: servers_pb2.Server, details: state_pb2.InstanceDetails | None) -> servers_pb2.Server:
    if details is not None:
        instances.put_back_server(server, details)
    return server


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

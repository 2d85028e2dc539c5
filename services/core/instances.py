"""Instance records in etcd: read, and change by compare-and-swap with retry on a lost race (retry.py).

Every writer (api, compute) goes through ``update``; it keeps ``status`` and ``updated_at``
consistent with ``vm_state``/``task_state`` so no writer can forget to.
"""

from __future__ import annotations

from collections.abc import Callable

from etcd3aio._protobuf import RequestOp
from google.protobuf import timestamp_pb2

from services.core import keys, retry
from services.core.errors import NotFound
from services.core.etcd import Store
from services.core.states import derive_status
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

# Metadata and scheduler hints up to this many bytes (keys and values) stay in the record.
INLINE_MAX = 1024


def now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def stamp(record: state_pb2.InstanceRecord) -> None:
    server = record.server
    server.status = derive_status(server.vm_state, server.task_state)  # type: ignore[assignment]
    server.updated_at.CopyFrom(now())


async def get(store: Store, instance_id: str) -> tuple[state_pb2.InstanceRecord, int]:
    kv = await store.get(keys.instance(instance_id))
    if kv is None:
        raise NotFound("server", instance_id)
    return state_pb2.InstanceRecord.FromString(kv.value), kv.mod_revision


async def update(
    store: Store,
    instance_id: str,
    mutate: Callable[[state_pb2.InstanceRecord], bool | None],
) -> state_pb2.InstanceRecord:
    """Applies ``mutate`` to the latest record until the swap wins.

    ``mutate`` changes the record in place; it returns False to leave it unchanged, or raises
    (e.g. FailedPrecondition) to refuse. Returns the record as stored.
    """

    write = lambda record, revision: swap(store, instance_id, record, revision)  # noqa: E731
    return await retry.swap(lambda: get(store, instance_id), mutate, write, what=f"server {instance_id}")


async def swap(store: Store, instance_id: str, record: state_pb2.InstanceRecord, revision: int) -> bool:
    """Writes ``record`` (stamped) if its key is still at ``revision``; False on a lost race."""
    stamp(record)
    return await store.swap(keys.instance(instance_id), record.SerializeToString(), revision)


def delete_ops(store: Store, record: state_pb2.InstanceRecord) -> list[RequestOp]:
    """Removing a server: its record and every key that goes with it (for one transaction)."""
    server = record.server
    ops = [
        store.op_delete(keys.instance(server.id)),
        store.op_delete(keys.project_instance(server.project_id, server.id)),
    ]
    if record.details_apart:
        ops.append(store.op_delete(keys.instance_details(server.id)))
    if record.request_id:
        ops.append(store.op_delete(keys.request(server.project_id, record.request_id)))
    return ops


def create_ops(store: Store, record: state_pb2.InstanceRecord) -> list[RequestOp]:
    """Writing a new server (a record ``set_apart`` has been applied to, and its details): the
    record and its project index (for one transaction, with a compare that the record is absent)."""
    server = record.server
    return [
        store.op_put(keys.instance(server.id), record.SerializeToString()),
        store.op_put(keys.project_instance(server.project_id, server.id), b""),
    ]


async def delete(store: Store, instance_id: str) -> None:
    """Removes the record and the keys that go with it in one transaction."""

    async def attempt() -> retry.Again | None:
        try:
            record, revision = await get(store, instance_id)
        except NotFound:
            return None
        ok, _ = await store.txn([store.cmp_mod(keys.instance(instance_id), revision)], delete_ops(store, record))
        return None if ok else retry.AGAIN

    await retry.until_done(attempt, what=f"server {instance_id}")


# ---- the parts kept apart -----------------------------------------------------------------------
def inline_size(server: servers_pb2.Server) -> int:
    """What metadata and scheduler hints weigh in the record: their keys and values, in bytes."""
    pairs = [*server.metadata.items(), *server.scheduler_hints.items()]
    return sum(len(k.encode()) + len(v.encode()) for k, v in pairs)


def set_apart(record: state_pb2.InstanceRecord) -> state_pb2.InstanceDetails | None:
    """Moves the write-once parts out of a new record (its user data and key always, its metadata
    and hints when larger than ``INLINE_MAX``) into the details to write beside it; None when
    there is nothing to move."""
    server = record.server
    details = state_pb2.InstanceDetails(user_data=server.user_data)
    if record.HasField("key"):
        details.key.CopyFrom(record.key)
    if inline_size(server) > INLINE_MAX:
        details.metadata.update(server.metadata)
        details.scheduler_hints.update(server.scheduler_hints)
        server.ClearField("metadata")
        server.ClearField("scheduler_hints")
        server.metadata_omitted = True
    if details.ByteSize() == 0:
        return None
    server.ClearField("user_data")
    record.ClearField("key")
    record.details_apart = True
    return details


def put_back(record: state_pb2.InstanceRecord, details: state_pb2.InstanceDetails) -> None:
    """The inverse of ``set_apart``, in place."""
    put_back_server(record.server, details)
    if details.HasField("key"):
        record.key.CopyFrom(details.key)


def put_back_server(server: servers_pb2.Server, details: state_pb2.InstanceDetails) -> None:
    """The server's parts of ``put_back``: its user data, metadata and hints."""
    server.user_data = details.user_data
    server.metadata.update(details.metadata)
    server.scheduler_hints.update(details.scheduler_hints)
    server.metadata_omitted = False


async def with_details(store: Store, record: state_pb2.InstanceRecord) -> state_pb2.InstanceRecord:
    """The record whole (a copy, with the parts kept apart put back), for the few readers that need
    them; the record itself when nothing is apart."""
    if not record.details_apart:
        return record
    whole = state_pb2.InstanceRecord()
    whole.CopyFrom(record)
    details = await read_details(store, record.server.id)
    if details is not None:
        put_back(whole, details)
    return whole


async def read_details(store: Store, instance_id: str, revision: int = 0) -> state_pb2.InstanceDetails | None:
    """The server's details (written once: any revision that still has them has the same)."""
    kv = await store.get(keys.instance_details(instance_id), revision=revision)
    return state_pb2.InstanceDetails.FromString(kv.value) if kv else None

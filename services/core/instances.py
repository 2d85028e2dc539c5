"""Instance records in etcd: read, and change by compare-and-swap with retry on a lost race.

Every writer (api, compute) goes through ``update``; it keeps ``status`` and ``updated_at``
consistent with ``vm_state``/``task_state`` so no writer can forget to.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import timestamp_pb2

from services.core import keys
from services.core.errors import Aborted, NotFound
from services.core.etcd import Store
from services.core.states import derive_status
from stratus.state.v1 import state_pb2

MAX_SWAP_ATTEMPTS = 50


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
    for _ in range(MAX_SWAP_ATTEMPTS):
        record, revision = await get(store, instance_id)
        if mutate(record) is False:
            return record
        stamp(record)
        if await store.swap(keys.instance(instance_id), record.SerializeToString(), revision):
            return record
    raise Aborted(f"server {instance_id} is changing too fast; try again")


async def delete(store: Store, instance_id: str) -> None:
    """Removes the record and its request index in one transaction."""
    for _ in range(MAX_SWAP_ATTEMPTS):
        try:
            record, revision = await get(store, instance_id)
        except NotFound:
            return
        key = keys.instance(instance_id)
        ops = [store.op_delete(key)]
        if record.request_id:
            ops.append(store.op_delete(keys.request(record.server.project_id, record.request_id)))
        ok, _ = await store.txn([store.cmp_mod(key, revision)], ops)
        if ok:
            return
    raise Aborted(f"server {instance_id} is changing too fast to delete; try again")

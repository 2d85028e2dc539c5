"""Server records as the api writes them at create (BUILD, scheduling, no host): the scheduler
claims a host only for a server that has one (it names the host in the same transaction)."""

from __future__ import annotations

from services.core import instances, keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2


async def building(store: Store, *instance_ids: str, project_id: str = "p-1", group: str = "") -> None:
    for instance_id in instance_ids:
        server = servers_pb2.Server(
            id=instance_id, project_id=project_id, server_group_id=group,
            vm_state=servers_pb2.VmState.VM_STATE_BUILDING, task_state=servers_pb2.TaskState.TASK_STATE_SCHEDULING,
        )  # fmt: skip
        record = state_pb2.InstanceRecord(server=server)
        instances.stamp(record)
        await store.put(keys.instance(instance_id), record.SerializeToString())


async def host_of(store: Store, instance_id: str) -> str:
    record, _ = await instances.get(store, instance_id)
    return record.server.host


async def stopping(store: Store, instance_id: str = "s1") -> str:
    """An ACTIVE server being stopped (POWERING_OFF): a flow in its task."""
    record = state_pb2.InstanceRecord()
    record.server.id = instance_id
    record.server.vm_state = servers_pb2.VmState.VM_STATE_ACTIVE
    record.server.task_state = servers_pb2.TaskState.TASK_STATE_POWERING_OFF
    await store.put(keys.instance(instance_id), record.SerializeToString())
    return instance_id

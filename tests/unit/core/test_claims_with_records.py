"""A claim and the record's host change in one transaction: taking a server off a host after a
failed build (``claims.unplace``) and removing a deleted server's record
(``counted.delete_instance``), against a real etcd."""

from __future__ import annotations

import pytest

from services.api.quotas import counted
from services.core import claims, instances, keys
from services.core.errors import NotFound
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2


async def placed(store: Store, instance_id: str, host: str, *, group: str = "") -> None:
    """A server placed on ``host`` as the scheduler leaves it: the record names the host, which
    holds its claim (and its group's placement)."""
    server = servers_pb2.Server(
        id=instance_id, project_id="p-1", host=host, server_group_id=group,
        resources=servers_pb2.ServerResources(vcpus=1, ram_mb=512, disk_gb=1),
        vm_state=servers_pb2.VmState.VM_STATE_BUILDING, task_state=servers_pb2.TaskState.TASK_STATE_SPAWNING,
    )  # fmt: skip
    await store.put(keys.instance(instance_id), state_pb2.InstanceRecord(server=server).SerializeToString())
    usage, _ = await claims.read_usage(store, host)
    usage.claims[instance_id].CopyFrom(state_pb2.Claim(instance_id=instance_id, ram_mb=512))
    await store.put(keys.host_usage(host), usage.SerializeToString())
    if group:
        kv = await store.get(keys.server_group(group))
        record = state_pb2.ServerGroupRecord.FromString(kv.value) if kv else state_pb2.ServerGroupRecord()
        record.group.id = group
        record.placements[instance_id] = host
        await store.put(keys.server_group(group), record.SerializeToString())


async def claimed(store: Store, host: str) -> list[str]:
    usage, _ = await claims.read_usage(store, host)
    return sorted(usage.claims)


def tried(record: state_pb2.InstanceRecord) -> None:
    record.tried_hosts.append("h1")


async def test_unplace_clears_the_host_and_releases_claim_and_placement_together(store: Store) -> None:
    await placed(store, "i-1", "h1", group="g")
    await placed(store, "i-2", "h1", group="g")
    record = await claims.unplace(store, "i-1", "h1", tried)
    assert record is not None and record.server.host == "" and list(record.tried_hosts) == ["h1"]
    stored, _ = await instances.get(store, "i-1")
    assert stored.server.host == "" and list(stored.tried_hosts) == ["h1"]
    assert await claimed(store, "h1") == ["i-2"]
    kv = await store.get(keys.server_group("g"))
    assert kv is not None and dict(state_pb2.ServerGroupRecord.FromString(kv.value).placements) == {"i-2": "h1"}


async def test_unplace_twice_changes_nothing_the_second_time(store: Store) -> None:
    await placed(store, "i-1", "h1")
    await claims.unplace(store, "i-1", "h1", tried)
    _, revision = await instances.get(store, "i-1")
    again = await claims.unplace(store, "i-1", "h1", tried)
    assert again is not None and list(again.tried_hosts) == ["h1"]  # not appended twice
    assert (await instances.get(store, "i-1"))[1] == revision


async def test_unplace_leaves_a_server_its_host_brought_up_meanwhile(store: Store) -> None:
    await placed(store, "i-1", "h1")

    def came_up(r: state_pb2.InstanceRecord) -> None:
        r.server.vm_state = servers_pb2.VmState.VM_STATE_ACTIVE
        r.server.task_state = servers_pb2.TaskState.TASK_STATE_UNSPECIFIED

    await instances.update(store, "i-1", came_up)
    _, revision = await instances.get(store, "i-1")
    record = await claims.unplace(store, "i-1", "h1", tried)  # a build that judged h1 down too early
    assert record is not None and record.server.host == "h1" and not record.tried_hosts
    assert (await instances.get(store, "i-1"))[1] == revision and await claimed(store, "h1") == ["i-1"]


async def test_unplace_releases_a_claim_no_record_names(store: Store) -> None:
    await placed(store, "i-1", "h1")
    await store.delete(keys.instance("i-1"))
    assert await claims.unplace(store, "i-1", "h1", tried) is None
    assert await claimed(store, "h1") == []


async def test_a_deleted_server_takes_its_claim_with_its_record(store: Store) -> None:
    await placed(store, "i-1", "h1")
    await placed(store, "i-2", "h1")
    await counted.delete_instance(store, "i-1")
    with pytest.raises(NotFound):
        await instances.get(store, "i-1")
    assert await claimed(store, "h1") == ["i-2"]


async def test_a_server_deleted_before_placement_has_no_claim_to_release(store: Store) -> None:
    server = servers_pb2.Server(id="i-1", project_id="p-1", vm_state=servers_pb2.VmState.VM_STATE_BUILDING)
    await store.put(keys.instance("i-1"), state_pb2.InstanceRecord(server=server).SerializeToString())
    await counted.delete_instance(store, "i-1")
    assert await store.get(keys.instance("i-1")) is None

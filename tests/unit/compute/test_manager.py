"""The compute manager against a real etcd, with the fake driver as the hypervisor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.compute.driver_calls import spec_of
from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.drivers.fake.host import FakeHostSize
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.core import instances, keys
from services.core.errors import FailedPrecondition, Internal, InvalidArgument, NotFound
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
P = servers_pb2.PowerState
S = servers_pb2.ServerStatus

HOST = "compute-test"
SIZE = FakeHostSize(vcpus=8, ram_mb=16384, disk_gb=200)
ID = "inst-1"


def make_manager(store: Store, driver: FakeDriver | None = None) -> tuple[ComputeManager, FakeDriver]:
    driver = driver or FakeDriver(SIZE)
    settings = ComputeSettings(host=HOST, availability_zone="az-test")
    return ComputeManager(settings, store, driver), driver


async def put_record(
    store: Store,
    *,
    host: str = HOST,
    vm: int = V.VM_STATE_BUILDING,
    task: int = T.TASK_STATE_SCHEDULING,
    power: int = P.POWER_STATE_NOSTATE,
) -> int:
    server = servers_pb2.Server(
        id=ID,
        name="vm-1",
        image_id="img-1",
        host=host,
        vm_state=vm,  # type: ignore[arg-type]
        task_state=task,  # type: ignore[arg-type]
        power_state=power,  # type: ignore[arg-type]
        resources=servers_pb2.ServerResources(vcpus=2, ram_mb=512, disk_gb=1),
        fault=servers_pb2.Fault(code="INTERNAL", message="spawn failed on compute-0", reason="SPAWN_FAILED"),
    )
    record = state_pb2.InstanceRecord(server=server, tried_hosts=["compute-0"])
    return await store.put(keys.instance(ID), record.SerializeToString())


async def server_of(store: Store) -> servers_pb2.Server:
    record, _ = await instances.get(store, ID)
    return record.server


async def revision(store: Store) -> int:
    _, rev = await instances.get(store, ID)
    return rev


class MeddlingDriver(FakeDriver):
    """A fake whose spawn runs ``hook`` once the domain is up: the record changes mid-spawn."""

    def __init__(self, hook: Callable[[], Awaitable[None]]) -> None:
        super().__init__(SIZE)
        self.hook = hook
        self.spawns = 0

    async def spawn(self, spec: InstanceSpec) -> None:
        self.spawns += 1
        await super().spawn(spec)
        await self.hook()


async def test_lease_records_carry_the_capabilities(store: Store) -> None:
    manager, _ = make_manager(store)
    with pytest.raises(RuntimeError, match="before start"):
        manager.lease_records()
    await manager.start()
    records = manager.lease_records()
    assert sorted(records) == [keys.host_capabilities(HOST), keys.host_stats(HOST), keys.zone_host("az-test", HOST)]
    caps = state_pb2.HostCapabilities.FromString(records[keys.host_capabilities(HOST)])
    assert (caps.host, caps.vcpus, caps.ram_mb, caps.disk_gb) == (HOST, 8, 16384, 200)
    assert (caps.hypervisor_type, caps.availability_zone) == ("fake", "az-test")
    assert (caps.architecture, caps.trusted, list(caps.vm_modes)) == ("x86_64", False, ["hvm"])
    assert (caps.reserved_vcpus, caps.reserved_ram_mb, caps.reserved_disk_gb) == (0, 0, 0)
    assert state_pb2.HostStats.FromString(records[keys.host_stats(HOST)]) == state_pb2.HostStats()
    await manager.stop()


async def test_build_makes_the_server_active_and_running(store: Store) -> None:
    await put_record(store)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)
    server = await server_of(store)
    assert (server.vm_state, server.task_state, server.power_state) == (
        V.VM_STATE_ACTIVE,
        T.TASK_STATE_UNSPECIFIED,
        P.POWER_STATE_RUNNING,
    )
    assert server.status == S.SERVER_STATUS_ACTIVE
    assert not server.HasField("fault")
    assert await driver.list_instances() == [ID]
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING


async def test_build_gives_the_driver_the_key_copied_into_the_record(store: Store) -> None:
    await put_record(store)

    def add_key(r: state_pb2.InstanceRecord) -> None:
        r.server.key_name = "laptop"
        r.key.CopyFrom(state_pb2.InstanceKey(name="laptop", public_key="ssh-ed25519 AAAA me@laptop"))

    await instances.update(store, ID, add_key)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)
    assert "fake authorized key laptop: ssh-ed25519 AAAA me@laptop\n" in await driver.console_output(ID, 0)


def test_spec_of_a_record_without_a_key_has_no_public_keys() -> None:
    record = state_pb2.InstanceRecord(server=servers_pb2.Server(id=ID, name="vm-1"))
    assert spec_of(ID, record).public_keys == {}
    record.key.CopyFrom(state_pb2.InstanceKey(name="k", public_key="ssh-rsa AAAA"))
    assert spec_of(ID, record).public_keys == {"k": "ssh-rsa AAAA"}


async def test_build_again_changes_nothing(store: Store) -> None:
    await put_record(store)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)
    before = await revision(store)
    await manager.build_instance(ID)
    assert await revision(store) == before
    assert await driver.list_instances() == [ID]


async def test_concurrent_builds_spawn_once(store: Store) -> None:
    await put_record(store)

    async def nothing() -> None:
        return None

    driver = MeddlingDriver(nothing)
    manager, _ = make_manager(store, driver)
    await asyncio.gather(manager.build_instance(ID), manager.build_instance(ID))
    assert driver.spawns == 1
    assert (await server_of(store)).vm_state == V.VM_STATE_ACTIVE


async def test_build_of_an_active_server_without_a_domain_spawns_it(store: Store) -> None:
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING
    assert (await server_of(store)).vm_state == V.VM_STATE_ACTIVE


async def call(manager: ComputeManager, op: str) -> None:
    if op == "build":
        await manager.build_instance(ID)
    elif op == "power_off":
        await manager.power_off(ID)
    elif op == "power_on":
        await manager.power_on(ID)
    elif op == "reboot":
        await manager.reboot(ID, hard=True)
    else:
        raise AssertionError(op)


@pytest.mark.parametrize("op", ["build", "power_off", "power_on", "reboot"])
@pytest.mark.parametrize(
    ("host", "task", "reason"),
    [
        ("compute-other", T.TASK_STATE_UNSPECIFIED, "WRONG_HOST"),
        ("", T.TASK_STATE_UNSPECIFIED, "WRONG_HOST"),
        (HOST, T.TASK_STATE_DELETING, "INVALID_STATE"),
    ],
)
async def test_refused_unless_the_server_is_here_and_not_deleting(
    store: Store, op: str, host: str, task: int, reason: str
) -> None:
    manager, driver = make_manager(store)
    await driver.spawn(InstanceSpec(ID, "vm-1", 1, 64, 1, "img-1"))
    await driver.power_off(ID)
    await put_record(store, host=host, vm=V.VM_STATE_ACTIVE, task=task)
    before = await revision(store)
    with pytest.raises(FailedPrecondition) as exc:
        await call(manager, op)
    assert exc.value.reason == reason
    assert await revision(store) == before
    assert await driver.get_power_state(ID) == P.POWER_STATE_SHUTDOWN


@pytest.mark.parametrize("vm", [V.VM_STATE_STOPPED, V.VM_STATE_ERROR, V.VM_STATE_DELETED])
async def test_build_refused_from_a_state_that_is_not_building(store: Store, vm: int) -> None:
    await put_record(store, vm=vm, task=T.TASK_STATE_UNSPECIFIED)
    manager, driver = make_manager(store)
    with pytest.raises(FailedPrecondition, match="cannot be built"):
        await manager.build_instance(ID)
    assert await driver.list_instances() == []
    assert (await server_of(store)).vm_state == vm


async def test_failed_spawn_cleans_up_and_reports_spawn_failed(store: Store) -> None:
    await put_record(store)
    manager, driver = make_manager(store, FakeDriver(SIZE, fail_spawn=True))
    with pytest.raises(Internal) as exc:
        await manager.build_instance(ID)
    assert exc.value.reason == "SPAWN_FAILED"
    assert exc.value.message == f"spawn failed on {HOST}: fake driver set to fail spawns"
    assert await driver.list_instances() == []
    server = await server_of(store)
    assert (server.vm_state, server.task_state) == (V.VM_STATE_BUILDING, T.TASK_STATE_SPAWNING)


def _deleting(record: state_pb2.InstanceRecord) -> None:
    record.server.task_state = T.TASK_STATE_DELETING


def _moved(record: state_pb2.InstanceRecord) -> None:
    record.server.host = "compute-other"


@pytest.mark.parametrize("change", ["deleted", "deleting", "moved"])
async def test_server_changed_mid_spawn_leaves_no_domain(store: Store, change: str) -> None:
    await put_record(store)

    async def meddle() -> None:
        if change == "deleted":
            await instances.delete(store, ID)
        else:
            await instances.update(store, ID, _deleting if change == "deleting" else _moved)

    driver = MeddlingDriver(meddle)
    manager, _ = make_manager(store, driver)
    with pytest.raises(FailedPrecondition, match="while spawning"):
        await manager.build_instance(ID)
    assert driver.spawns == 1
    assert await driver.list_instances() == []


async def test_power_off_then_on(store: Store) -> None:
    await put_record(store)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)

    await manager.power_off(ID)
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_STOPPED,
        P.POWER_STATE_SHUTDOWN,
        T.TASK_STATE_UNSPECIFIED,
    )
    assert server.status == S.SERVER_STATUS_SHUTOFF
    assert await driver.get_power_state(ID) == P.POWER_STATE_SHUTDOWN

    await manager.power_on(ID)
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_ACTIVE,
        P.POWER_STATE_RUNNING,
        T.TASK_STATE_UNSPECIFIED,
    )
    assert server.status == S.SERVER_STATUS_ACTIVE
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING


@pytest.mark.parametrize(("task", "hard"), [(T.TASK_STATE_REBOOTING, False), (T.TASK_STATE_REBOOTING_HARD, True)])
async def test_reboot_clears_the_task(store: Store, task: int, hard: bool) -> None:
    await put_record(store)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)

    def rebooting(record: state_pb2.InstanceRecord) -> None:
        record.server.task_state = task  # type: ignore[assignment]

    await instances.update(store, ID, rebooting)
    await manager.reboot(ID, hard=hard)
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_ACTIVE,
        P.POWER_STATE_RUNNING,
        T.TASK_STATE_UNSPECIFIED,
    )
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING


async def test_soft_reboot_of_a_stopped_domain_fails_as_reboot_failed(store: Store) -> None:
    await put_record(store)
    manager, _ = make_manager(store)
    await manager.build_instance(ID)
    await manager.power_off(ID)
    before = await revision(store)
    with pytest.raises(Internal) as exc:
        await manager.reboot(ID, hard=False)
    assert exc.value.reason == "REBOOT_FAILED"
    assert await revision(store) == before


@pytest.mark.parametrize("op", ["power_off", "power_on", "reboot"])
async def test_power_operation_without_a_domain_is_refused(store: Store, op: str) -> None:
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED)
    manager, _ = make_manager(store)
    before = await revision(store)
    with pytest.raises(FailedPrecondition) as exc:
        await call(manager, op)
    assert exc.value.reason == "DOMAIN_NOT_FOUND"
    assert await revision(store) == before


async def mark_deleting(store: Store) -> None:
    def deleting(r: state_pb2.InstanceRecord) -> None:
        r.server.task_state = T.TASK_STATE_DELETING

    await instances.update(store, ID, deleting)


async def test_destroy_is_idempotent_and_leaves_the_record(store: Store) -> None:
    await put_record(store)
    manager, driver = make_manager(store)
    await manager.build_instance(ID)
    await mark_deleting(store)  # as the delete flow does before it asks
    before = await revision(store)
    for _ in range(2):
        await manager.destroy_instance(ID)
        assert await driver.list_instances() == []
    await manager.destroy_instance("never-existed")
    assert await revision(store) == before


@pytest.mark.parametrize("op", ["build", "power_off", "power_on", "reboot"])
async def test_missing_record_is_not_found(store: Store, op: str) -> None:
    manager, driver = make_manager(store)
    with pytest.raises(NotFound):
        await call(manager, op)
    assert await driver.list_instances() == []


async def test_empty_instance_id_is_invalid(store: Store) -> None:
    manager, _ = make_manager(store)
    with pytest.raises(InvalidArgument, match="instance_id"):
        await manager.destroy_instance("")

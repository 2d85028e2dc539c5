"""Records never lie about a guest (issue 18, item 6): a domain removed behind the compute's back
(an operator's ``virsh undefine``, a removed instance directory) turns the server SHUTOFF with a
fault saying so, or ERROR when its disk went too, by compare-and-swap, keeping its claim; a start
or a hard reboot defines the domain again from the record over the disk that remains, as Nova's
hard reboot does. Against a real etcd, with the fake driver as the hypervisor."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from services.compute import vanished
from services.compute.drivers.base import InstanceNotFound, InstanceSpec
from services.compute.drivers.fake.domains import forget, read_domains
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.locks import KeyedLocks
from services.compute.manager import ComputeManager
from services.compute.reconcile import Reconciler
from services.compute.settings import ComputeSettings
from services.core import instances, keys
from services.core.errors import FailedPrecondition
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2
from tests.unit.compute.test_manager import HOST, ID, SIZE, P, S, T, V, put_record, revision, server_of

SPEC = InstanceSpec(instance_id=ID, name="vm-1", vcpus=2, ram_mb=512, disk_gb=1, image_id="img-1")
KEPT = f"the domain of this server vanished from {HOST}; its disk remains: start or hard-reboot it to recreate it"
LOST = f"the domain of this server vanished from {HOST} and its disk is gone: delete it"


class MeddlingDriver(FakeDriver):
    """A fake that runs ``meddle`` (a flow writing the record) when the reconciler asks for the disk:
    between its read of the record and its write."""

    def __init__(self, store: Store) -> None:
        super().__init__(SIZE)
        self.store = store
        self.meddle: state_pb2.InstanceRecord | None = None

    async def has_disk(self, instance_id: str) -> bool:
        found = await super().has_disk(instance_id)
        if self.meddle is not None:
            meddle, self.meddle = self.meddle, None
            await self.store.put(keys.instance(instance_id), meddle.SerializeToString())
        return found


async def claimed(store: Store) -> None:
    """The claim the scheduler wrote for the server here: how the reconcile pass finds a server
    whose domain is gone."""
    usage = state_pb2.HostUsage()
    usage.claims[ID].CopyFrom(state_pb2.Claim(instance_id=ID, vcpus=2, ram_mb=512, disk_gb=1))
    await store.put(keys.host_usage(HOST), usage.SerializeToString())


async def claims(store: Store) -> list[str]:
    kv = await store.get(keys.host_usage(HOST))
    assert kv is not None
    return list(state_pb2.HostUsage.FromString(kv.value).claims)


async def running_server(
    store: Store, driver: FakeDriver, vm: int = V.VM_STATE_ACTIVE, power: int = P.POWER_STATE_RUNNING
) -> Reconciler:
    """A server placed here, its domain up, its claim held, nothing in progress; the record with no fault."""
    await put_record(store, vm=vm, task=T.TASK_STATE_UNSPECIFIED, power=power)
    await instances.update(store, ID, lambda r: r.server.ClearField("fault"))
    await claimed(store)
    await driver.spawn(SPEC)
    return Reconciler(ComputeSettings(host=HOST), store, driver, KeyedLocks())


def fault_of(server: servers_pb2.Server) -> tuple[str, str, str, dict[str, str]]:
    f = server.fault
    return (f.code, f.reason, f.message, dict(f.metadata))


# ---- the reconcile pass ---------------------------------------------------------------------------
@pytest.mark.parametrize(("vm", "power"), [(V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING),
                                           (V.VM_STATE_PAUSED, P.POWER_STATE_PAUSED),
                                           (V.VM_STATE_STOPPED, P.POWER_STATE_SHUTDOWN),
                                           # what the pass left before: ACTIVE with no power state for ever
                                           (V.VM_STATE_ACTIVE, P.POWER_STATE_NOSTATE)])  # fmt: skip
async def test_a_domain_gone_with_its_disk_left_turns_the_server_shutoff(store: Store, vm: int, power: int) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver, vm, power)
    driver.undefine(ID)
    await reconciler.reconcile()
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_STOPPED, P.POWER_STATE_NOSTATE, T.TASK_STATE_UNSPECIFIED)  # fmt: skip
    assert server.status == S.SERVER_STATUS_SHUTOFF
    assert fault_of(server) == ("FAILED_PRECONDITION", "DOMAIN_VANISHED", KEPT, {"host": HOST})
    assert server.host == HOST and await claims(store) == [ID]  # it still lives here: it keeps its claim
    assert await driver.list_instances() == [] and await driver.has_disk(ID)  # nothing made behind the user's back
    before = await revision(store)
    await reconciler.reconcile()
    assert await revision(store) == before  # said once


async def test_a_domain_gone_with_its_disk_turns_the_server_error(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    driver.remove_disk(ID)
    await reconciler.reconcile()
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.status) == (
        V.VM_STATE_ERROR, P.POWER_STATE_NOSTATE, S.SERVER_STATUS_ERROR)  # fmt: skip
    assert fault_of(server) == ("FAILED_PRECONDITION", "DISK_VANISHED", LOST, {"host": HOST})
    assert server.host == HOST and await claims(store) == [ID]  # a delete frees it
    before = await revision(store)
    await reconciler.reconcile()
    assert await revision(store) == before


async def test_a_disk_that_goes_after_the_domain_turns_the_shutoff_server_error(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    await reconciler.reconcile()
    assert (await server_of(store)).vm_state == V.VM_STATE_STOPPED
    driver.remove_disk(ID)
    await reconciler.reconcile()
    server = await server_of(store)
    assert (server.vm_state, server.fault.reason) == (V.VM_STATE_ERROR, "DISK_VANISHED")


async def test_a_start_that_failed_since_keeps_its_own_fault(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    await reconciler.reconcile()

    def start_failed(r: state_pb2.InstanceRecord) -> None:
        r.server.fault.CopyFrom(servers_pb2.Fault(code="INTERNAL", message="power_on failed", reason="POWER_ON_FAILED"))

    await instances.update(store, ID, start_failed)
    await reconciler.reconcile()
    assert (await server_of(store)).fault.reason == "POWER_ON_FAILED"


@pytest.mark.parametrize("task", [T.TASK_STATE_REBOOTING_HARD, T.TASK_STATE_POWERING_ON, T.TASK_STATE_DELETING])
async def test_a_server_in_a_task_is_left_to_its_flow(store: Store, task: int) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    await instances.update(store, ID, lambda r: setattr(r.server, "task_state", task))
    driver.undefine(ID)
    before = await revision(store)
    await reconciler.reconcile()
    await reconciler.sync_one(ID)
    assert await revision(store) == before
    assert (await server_of(store)).vm_state == V.VM_STATE_ACTIVE


async def test_a_server_whose_lock_is_held_is_left_alone(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    before = await revision(store)
    async with reconciler.locks.hold(ID):
        await reconciler.reconcile()
    assert await revision(store) == before


@pytest.mark.parametrize("flow", ["hard reboot begun", "metadata changed"])
async def test_a_record_a_flow_changed_meanwhile_is_not_overwritten(store: Store, flow: str) -> None:
    driver = MeddlingDriver(store)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    newer, _ = await instances.get(store, ID)
    if flow == "hard reboot begun":
        newer.server.task_state = T.TASK_STATE_REBOOTING_HARD
    else:
        newer.server.metadata["k"] = "v"
    driver.meddle = newer
    await reconciler.reconcile()
    assert (await instances.get(store, ID))[0] == newer  # the flow's record, as it wrote it
    await reconciler.reconcile()  # the next pass looks again
    server = await server_of(store)
    if flow == "hard reboot begun":
        assert server.vm_state == V.VM_STATE_ACTIVE and not server.HasField("fault")
    else:
        assert (server.vm_state, server.fault.reason, server.metadata["k"]) == (
            V.VM_STATE_STOPPED, "DOMAIN_VANISHED", "v")  # fmt: skip


async def test_the_record_swap_compares_the_revision_read(store: Store) -> None:
    await put_record(store, vm=V.VM_STATE_ACTIVE, task=T.TASK_STATE_UNSPECIFIED, power=P.POWER_STATE_RUNNING)
    seen, rev = await instances.get(store, ID)
    await instances.update(store, ID, lambda r: None)  # any write: another revision
    assert await vanished.record(store, seen, rev, HOST, disk_remains=True) is None
    assert (await server_of(store)).vm_state == V.VM_STATE_ACTIVE
    seen, rev = await instances.get(store, ID)
    written = await vanished.record(store, seen, rev, HOST, disk_remains=True)
    assert written is not None and await server_of(store) == written.server


async def test_the_event_path_notices_it_too(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver)
    driver.undefine(ID)
    await reconciler.sync_one(ID)
    assert (await server_of(store)).fault.reason == "DOMAIN_VANISHED"


async def test_a_resize_waiting_for_confirmation_is_not_followed(store: Store) -> None:
    driver = FakeDriver(SIZE)
    reconciler = await running_server(store, driver, V.VM_STATE_RESIZED)
    driver.undefine(ID)
    await reconciler.reconcile()
    server = await server_of(store)
    assert (server.vm_state, server.HasField("fault")) == (V.VM_STATE_RESIZED, False)


# ---- start and hard reboot define the domain again -----------------------------------------------
async def vanished_server(store: Store, keyed: bool = True) -> tuple[ComputeManager, FakeDriver]:
    """An ACTIVE server (with a key copied into its record) whose domain was undefined."""
    driver = FakeDriver(SIZE)
    await running_server(store, driver)
    if keyed:

        def with_key(r: state_pb2.InstanceRecord) -> None:
            r.server.key_name = "laptop"
            r.key.CopyFrom(state_pb2.InstanceKey(name="laptop", public_key="ssh-ed25519 AAAA laptop"))

        await instances.update(store, ID, with_key)
    driver.undefine(ID)
    return ComputeManager(ComputeSettings(host=HOST), store, driver), driver


async def begin(store: Store, task: int) -> None:
    """What the api does before it calls the compute: the action's task set."""
    await instances.update(store, ID, lambda r: setattr(r.server, "task_state", task))


async def test_a_hard_reboot_defines_a_vanished_domain_again_from_the_record(store: Store) -> None:
    manager, driver = await vanished_server(store)
    await begin(store, T.TASK_STATE_REBOOTING_HARD)
    await manager.reboot(ID, hard=True)
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING
    assert driver._domains[ID].spec == dataclasses.replace(SPEC, public_keys={"laptop": "ssh-ed25519 AAAA laptop"})
    assert "fake authorized key laptop: ssh-ed25519 AAAA laptop" in await driver.console_output(ID, 0)
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING, T.TASK_STATE_UNSPECIFIED)  # fmt: skip


async def test_a_start_of_the_shutoff_server_defines_its_domain_again(store: Store) -> None:
    manager, driver = await vanished_server(store, keyed=False)
    await manager.reconciler.reconcile()
    assert (await server_of(store)).status == S.SERVER_STATUS_SHUTOFF
    await begin(store, T.TASK_STATE_POWERING_ON)
    await manager.power_on(ID)
    assert await driver.get_power_state(ID) == P.POWER_STATE_RUNNING
    assert driver._domains[ID].spec == SPEC
    server = await server_of(store)
    assert (server.vm_state, server.power_state, server.task_state) == (
        V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING, T.TASK_STATE_UNSPECIFIED)  # fmt: skip


async def test_a_soft_reboot_of_a_vanished_domain_is_a_clear_refusal(store: Store) -> None:
    manager, driver = await vanished_server(store)
    await begin(store, T.TASK_STATE_REBOOTING)
    before = await revision(store)
    with pytest.raises(FailedPrecondition) as exc:
        await manager.reboot(ID, hard=False)
    assert exc.value.reason == "DOMAIN_NOT_FOUND"
    assert exc.value.message == f"reboot failed on {HOST}: server {ID} has no domain here"
    assert await driver.list_instances() == []
    assert await revision(store) == before


@pytest.mark.parametrize("hard", [True, False])
async def test_nothing_is_recreated_when_the_disk_is_gone(store: Store, hard: bool) -> None:
    manager, driver = await vanished_server(store)
    driver.remove_disk(ID)
    await begin(store, T.TASK_STATE_REBOOTING_HARD if hard else T.TASK_STATE_REBOOTING)
    before = await revision(store)
    with pytest.raises(FailedPrecondition) as exc:
        await manager.reboot(ID, hard=hard)
    assert exc.value.reason == "DOMAIN_NOT_FOUND"
    if hard:
        assert "its disk is gone" in exc.value.message
    assert await driver.list_instances() == []
    assert await revision(store) == before


async def test_a_hard_reboot_of_a_domain_that_is_there_defines_nothing(store: Store) -> None:
    driver = FakeDriver(SIZE)
    await running_server(store, driver)
    driver._domains[ID].console.append("still the same domain")
    manager = ComputeManager(ComputeSettings(host=HOST), store, driver)
    await begin(store, T.TASK_STATE_REBOOTING_HARD)
    await manager.reboot(ID, hard=True)
    assert "still the same domain" in await driver.console_output(ID, 0)


# ---- the fake driver: a domain lost from outside ------------------------------------------------
async def test_the_fake_sees_its_domains_file_changed_from_outside(tmp_path: Path) -> None:
    path = tmp_path / "compute-1.json"
    driver = FakeDriver(SIZE, domains_file=path, host="compute-1")
    await driver.spawn(SPEC)
    forget(path, ID)  # another process: virsh destroy; virsh undefine
    assert await driver.list_instances() == []
    assert (await driver.has_domain(ID), await driver.has_disk(ID)) == (False, True)
    assert await driver.get_power_state(ID) == P.POWER_STATE_NOSTATE
    assert await driver.redefine(SPEC) is True
    assert await driver.redefine(SPEC) is False
    assert read_domains(path)[ID]["power_state"] == P.POWER_STATE_SHUTDOWN
    await driver.power_on(ID)
    forget(path, ID, disk_too=True)  # the instance directory removed as well
    assert (await driver.has_domain(ID), await driver.has_disk(ID)) == (False, False)
    with pytest.raises(InstanceNotFound):
        await driver.redefine(SPEC)
    again = FakeDriver(SIZE, domains_file=path, host="compute-1")  # a restarted compute sees the same
    assert (await again.list_instances(), await again.has_disk(ID)) == ([], False)


async def test_an_older_domains_file_has_a_disk_for_every_domain(tmp_path: Path) -> None:
    path = tmp_path / "compute-1.json"
    await FakeDriver(SIZE, domains_file=path, host="compute-1").spawn(SPEC)
    data = json.loads(path.read_text())
    del data["disks"]
    path.write_text(json.dumps(data))
    assert await FakeDriver(SIZE, domains_file=path, host="compute-1").has_disk(ID)

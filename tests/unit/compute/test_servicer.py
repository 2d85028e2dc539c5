"""The compute's gRPC surface as ``main.build`` wires it, over a real channel and a real etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest

from services.compute.main import build
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.core import instances, keys
from services.core.etcd import Store
from services.core.interceptors import RequestInterceptor
from stratus.compute.v1 import compute_pb2, compute_pb2_grpc
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

HOST = "compute-grpc"
ID = "inst-grpc"
V = servers_pb2.VmState
P = servers_pb2.PowerState
T = servers_pb2.TaskState


async def serve(settings: ComputeSettings, store: Store) -> tuple[grpc.aio.Server, ComputeManager, str]:
    manager, spec = build(settings, store)
    server = grpc.aio.server(interceptors=[RequestInterceptor(None)])
    for add, servicer in spec.servicers:
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await manager.start()
    await server.start()
    return server, manager, f"127.0.0.1:{port}"


@dataclass
class Served:
    stub: compute_pb2_grpc.ComputeStub
    manager: ComputeManager


@pytest.fixture
async def served(store: Store, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """A compute over gRPC; ``request.param`` holds ComputeSettings fields (e.g. fake_fail_spawn)."""
    settings = ComputeSettings(host=HOST, **getattr(request, "param", {}))
    server, manager, endpoint = await serve(settings, store)
    async with grpc.aio.insecure_channel(endpoint) as channel:
        yield Served(compute_pb2_grpc.ComputeStub(channel), manager)
    await server.stop(None)
    await manager.stop()


@pytest.fixture
def stub(served: Served) -> compute_pb2_grpc.ComputeStub:
    return served.stub


async def record_when(store: Store, done: Callable[[state_pb2.InstanceRecord], bool]) -> state_pb2.InstanceRecord:
    """The record once ``done`` holds for it (polled; the test's timeout bounds the wait)."""
    while True:
        record, _ = await instances.get(store, ID)
        if done(record):
            return record
        await asyncio.sleep(0.02)


def deleting(r: state_pb2.InstanceRecord) -> None:
    r.server.task_state = T.TASK_STATE_DELETING


async def put_record(store: Store) -> None:
    server = servers_pb2.Server(id=ID, name="vm", host=HOST, vm_state=V.VM_STATE_BUILDING)
    await store.put(keys.instance(ID), state_pb2.InstanceRecord(server=server).SerializeToString())


async def test_build_names_the_compute_service(store: Store) -> None:
    _, spec = build(ComputeSettings(host=HOST), store)
    assert spec.binary == "compute"
    assert list(spec.service_names) == ["stratus.compute.v1.Compute"]


async def built(store: Store, stub: compute_pb2_grpc.ComputeStub) -> None:
    """The server ACTIVE on the compute."""
    await put_record(store)
    await stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))
    await record_when(store, lambda r: r.server.vm_state == V.VM_STATE_ACTIVE)


async def in_task(store: Store, task: T.ValueType) -> None:
    """What the api does before a power call: the record in the call's task."""
    await instances.update(store, ID, lambda r: setattr(r.server, "task_state", task))


async def test_every_call_round_trips(store: Store, served: Served) -> None:
    stub = served.stub
    await built(store, stub)
    await in_task(store, T.TASK_STATE_POWERING_OFF)
    await stub.PowerOffInstance(compute_pb2.PowerOffInstanceRequest(instance_id=ID))  # accepted at once
    record = await record_when(store, lambda r: r.server.task_state == T.TASK_STATE_UNSPECIFIED)
    assert (record.server.vm_state, record.server.power_state) == (V.VM_STATE_STOPPED, P.POWER_STATE_SHUTDOWN)
    await in_task(store, T.TASK_STATE_POWERING_ON)
    await stub.PowerOnInstance(compute_pb2.PowerOnInstanceRequest(instance_id=ID))
    await record_when(store, lambda r: r.server.task_state == T.TASK_STATE_UNSPECIFIED)
    await in_task(store, T.TASK_STATE_REBOOTING)
    await stub.RebootInstance(compute_pb2.RebootInstanceRequest(instance_id=ID, hard=False))
    record = await record_when(store, lambda r: r.server.task_state == T.TASK_STATE_UNSPECIFIED)
    assert (record.server.vm_state, record.server.power_state) == (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING)
    await stub.DestroyInstance(compute_pb2.DestroyInstanceRequest(instance_id=ID))
    await stub.DestroyInstance(compute_pb2.DestroyInstanceRequest(instance_id=ID))


async def test_a_power_call_asked_late_changes_nothing(store: Store, served: Served) -> None:
    """A stop asked after its task ended (a stale api's ask, the user started the server since):
    accepted, and the running server is left alone."""
    await built(store, served.stub)
    await served.stub.PowerOffInstance(compute_pb2.PowerOffInstanceRequest(instance_id=ID))
    await served.manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert (record.server.vm_state, record.server.power_state) == (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING)
    assert await served.manager.driver.get_power_state(ID) == P.POWER_STATE_RUNNING


async def test_a_failed_power_call_is_reported(store: Store, served: Served) -> None:
    await built(store, served.stub)
    await served.manager.driver.destroy(ID)  # the domain went away behind the compute's back
    await in_task(store, T.TASK_STATE_PAUSING)
    await served.stub.PauseInstance(compute_pb2.PauseInstanceRequest(instance_id=ID))
    record = await record_when(store, lambda r: r.HasField("report"))
    assert (record.report.host, record.report.call) == (HOST, "power")
    assert (record.report.fault.code, record.report.fault.reason) == ("FAILED_PRECONDITION", "DOMAIN_NOT_FOUND")
    assert record.server.task_state == T.TASK_STATE_PAUSING  # the api clears it, with the fault


@pytest.mark.parametrize("served", [{"fake_fail_spawn": True}], indirect=True)
async def test_a_failed_spawn_is_reported_in_the_record_as_internal_spawn_failed(store: Store, served: Served) -> None:
    await put_record(store)
    await served.stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))  # accepted at once
    record = await record_when(store, lambda r: r.HasField("report"))
    assert (record.report.host, record.report.call) == (HOST, "build")
    assert (record.report.fault.code, record.report.fault.reason) == ("INTERNAL", "SPAWN_FAILED")
    assert HOST in record.report.fault.message
    assert record.server.task_state == T.TASK_STATE_SPAWNING  # the api decides what comes next
    assert not await served.manager.driver.list_instances()  # the compute cleaned up what it made
    # Asked again (another api took the flow over): the report stands, nothing is spawned again.
    await served.stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))
    await served.manager.wait_idle(ID)
    again, _ = await instances.get(store, ID)
    assert again.report == record.report


@pytest.mark.parametrize("served", [{"fake_spawn_delay_s": 60.0}], indirect=True)
async def test_build_answers_before_the_spawn_ends_and_a_destroy_cancels_it(store: Store, served: Served) -> None:
    await put_record(store)
    await served.stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))
    record, _ = await instances.get(store, ID)
    assert record.server.task_state == T.TASK_STATE_SPAWNING  # accepted: the 60 s spawn runs on
    await served.stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))  # a re-ask finds it
    await instances.update(store, ID, deleting)  # as the delete flow does before it asks
    await served.stub.DestroyInstance(compute_pb2.DestroyInstanceRequest(instance_id=ID))
    await served.manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert record.server.vm_state == V.VM_STATE_BUILDING and not record.HasField("report")
    assert record.server.task_state == T.TASK_STATE_DELETING
    assert not await served.manager.driver.list_instances()


async def test_a_resize_asked_outside_its_task_changes_nothing(store: Store, served: Served) -> None:
    """A late ResizeInstance (its resize over, or never begun) must not resize again: the disk kept
    for a revert would be overwritten."""
    await built(store, served.stub)
    await served.stub.ResizeInstance(compute_pb2.ResizeInstanceRequest(instance_id=ID))
    await served.manager.wait_idle(ID)
    record, _ = await instances.get(store, ID)
    assert (record.server.vm_state, record.server.task_state) == (V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED)
    assert not record.HasField("report")
    await in_task(store, T.TASK_STATE_RESIZE_PREP)  # the same ask in its task resizes
    await served.stub.ResizeInstance(compute_pb2.ResizeInstanceRequest(instance_id=ID))
    await record_when(store, lambda r: r.server.vm_state == V.VM_STATE_RESIZED)

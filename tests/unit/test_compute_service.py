"""The compute's gRPC surface as ``main.build`` wires it, over a real channel and a real etcd."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from services.compute.main import build
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.core import instances, keys
from services.core.errors import FailedPrecondition, Internal, from_rpc_error
from services.core.etcd import Store
from services.core.interceptors import RequestInterceptor
from stratus.compute.v1 import compute_pb2, compute_pb2_grpc
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

HOST = "compute-grpc"
ID = "inst-grpc"
V = servers_pb2.VmState
P = servers_pb2.PowerState


async def serve(settings: ComputeSettings, store: Store) -> tuple[grpc.aio.Server, ComputeManager, str]:
    manager, spec = build(settings, store)
    server = grpc.aio.server(interceptors=[RequestInterceptor(None)])
    for add, servicer in spec.servicers:
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await manager.start()
    await server.start()
    return server, manager, f"127.0.0.1:{port}"


@pytest.fixture
async def stub(store: Store, request: pytest.FixtureRequest) -> AsyncIterator[compute_pb2_grpc.ComputeStub]:
    fail = bool(getattr(request, "param", False))
    settings = ComputeSettings(host=HOST, fake_fail_spawn=fail)
    server, manager, endpoint = await serve(settings, store)
    async with grpc.aio.insecure_channel(endpoint) as channel:
        yield compute_pb2_grpc.ComputeStub(channel)
    await server.stop(None)
    await manager.stop()


async def put_record(store: Store) -> None:
    server = servers_pb2.Server(id=ID, name="vm", host=HOST, vm_state=V.VM_STATE_BUILDING)
    await store.put(keys.instance(ID), state_pb2.InstanceRecord(server=server).SerializeToString())


async def test_build_names_the_compute_service(store: Store) -> None:
    _, spec = build(ComputeSettings(host=HOST), store)
    assert spec.binary == "compute"
    assert list(spec.service_names) == ["stratus.compute.v1.Compute"]


async def test_every_call_round_trips(store: Store, stub: compute_pb2_grpc.ComputeStub) -> None:
    await put_record(store)
    await stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))
    await stub.PowerOffInstance(compute_pb2.PowerOffInstanceRequest(instance_id=ID))
    record, _ = await instances.get(store, ID)
    assert record.server.power_state == P.POWER_STATE_SHUTDOWN
    await stub.PowerOnInstance(compute_pb2.PowerOnInstanceRequest(instance_id=ID))
    await stub.RebootInstance(compute_pb2.RebootInstanceRequest(instance_id=ID, hard=False))
    record, _ = await instances.get(store, ID)
    assert (record.server.vm_state, record.server.power_state) == (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING)
    await stub.DestroyInstance(compute_pb2.DestroyInstanceRequest(instance_id=ID))
    await stub.DestroyInstance(compute_pb2.DestroyInstanceRequest(instance_id=ID))


@pytest.mark.parametrize("stub", [True], indirect=True)
async def test_failed_spawn_reaches_the_caller_as_internal_spawn_failed(
    store: Store, stub: compute_pb2_grpc.ComputeStub
) -> None:
    await put_record(store)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.BuildInstance(compute_pb2.BuildInstanceRequest(instance_id=ID))
    assert exc.value.code() == grpc.StatusCode.INTERNAL
    err = from_rpc_error(exc.value)
    assert isinstance(err, Internal)
    assert err.reason == "SPAWN_FAILED"
    assert HOST in err.message


async def test_power_on_without_a_domain_is_failed_precondition(
    store: Store, stub: compute_pb2_grpc.ComputeStub
) -> None:
    await put_record(store)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.PowerOnInstance(compute_pb2.PowerOnInstanceRequest(instance_id=ID))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    err = from_rpc_error(exc.value)
    assert isinstance(err, FailedPrecondition)
    assert err.reason == "DOMAIN_NOT_FOUND"

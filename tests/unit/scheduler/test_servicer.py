"""The scheduler's gRPC service as built by ``main.build``: wiring, and NO_VALID_HOST on the wire."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from pydantic import ValidationError

from services.core import instances, keys
from services.core.config import load_settings
from services.core.errors import ResourceExhausted, from_rpc_error
from services.core.etcd import Store
from services.core.interceptors import RequestInterceptor
from services.core.runner import ServiceSpec
from services.scheduler.main import SERVICE_NAME, build
from services.scheduler.settings import SchedulerSettings
from stratus.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2
from tests.support.records import building


@contextlib.asynccontextmanager
async def serving(spec: ServiceSpec) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[RequestInterceptor()])
    for add, servicer in spec.servicers:
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


def test_settings_refuse_unknown_filters_and_weighers() -> None:
    with pytest.raises(ValidationError, match=r"unknown scheduler filter\(s\) 'Bogus'; known: .*AvailabilityZone"):
        load_settings(SchedulerSettings, None, host="s1", enabled_filters="RamFilter,Bogus")
    with pytest.raises(ValidationError, match=r"unknown scheduler weigher\(s\) 'Bogus'"):
        SchedulerSettings(host="s1", weighers=["Bogus"])
    with pytest.raises(ValidationError, match=r"unknown scheduler weigher\(s\) 'Typo'"):
        load_settings(SchedulerSettings, None, host="s1", weight_multipliers="Typo=2")
    settings = load_settings(SchedulerSettings, None, host="s1", weight_multipliers="RamWeigher=-1.5")
    assert settings.weight_multipliers == {"RamWeigher": -1.5}


def test_build_refuses_unknown_filters_and_weighers(store: Store) -> None:
    settings = SchedulerSettings(host="s1")
    with pytest.raises(ValueError, match=r"unknown scheduler filter.*'Bogus'"):
        build(settings.model_copy(update={"enabled_filters": ["RamFilter", "Bogus"]}), store)
    with pytest.raises(ValueError, match=r"unknown scheduler weigher.*'Bogus'"):
        build(settings.model_copy(update={"weighers": ["Bogus"]}), store)


async def test_select_destinations_over_grpc(store: Store) -> None:
    caps = state_pb2.HostCapabilities(host="h1", vcpus=4, ram_mb=2048, disk_gb=40)
    await store.put(keys.host_capabilities("h1"), caps.SerializeToString())
    await store.put(keys.service("compute", "h1"), state_pb2.ServiceRecord(host="h1").SerializeToString())
    await building(store, "i-1", "i-2")
    manager, spec = build(SchedulerSettings(host="s1", alternates=1), store)
    assert spec.binary == "scheduler" and list(spec.service_names) == [SERVICE_NAME] == [
        "stratus.scheduler.v1.Scheduler"
    ]
    await manager.start()
    try:
        async with serving(spec) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            request = scheduler_pb2.SelectDestinationsRequest(
                spec=scheduler_pb2.RequestSpec(
                    instance_id="i-1", resources=servers_pb2.ServerResources(vcpus=1, ram_mb=1024, disk_gb=1)
                )
            )
            record, revision = await instances.get(store, "i-1")  # as the api's build sends it
            request.instance.CopyFrom(record)
            request.instance_revision = revision
            reply = await stub.SelectDestinations(request)
            assert reply.selected.host == "h1" and (await instances.get(store, "i-1"))[0].server.host == "h1"
            request.ClearField("instance")
            request.instance_revision = 0  # without: the scheduler reads the record
            request.spec.instance_id = "i-2"
            request.spec.resources.ram_mb = 4096
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.SelectDestinations(request)
    finally:
        await manager.stop()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    err = from_rpc_error(info.value)
    assert isinstance(err, ResourceExhausted)
    assert err.reason == "NO_VALID_HOST"
    assert err.metadata == {"filter": "RamFilter", "resource": "ram_mb"}
    assert "4096 MB RAM needed, at most 1024 MB free" in err.message


async def test_explain_placement_over_grpc(store: Store) -> None:
    caps = state_pb2.HostCapabilities(host="h1", vcpus=4, ram_mb=2048, disk_gb=40)
    await store.put(keys.host_capabilities("h1"), caps.SerializeToString())
    await store.put(keys.service("compute", "h1"), state_pb2.ServiceRecord(host="h1").SerializeToString())
    manager, spec = build(SchedulerSettings(host="s1"), store)
    await manager.start()
    try:
        async with serving(spec) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            request = scheduler_pb2.ExplainPlacementRequest(
                spec=scheduler_pb2.RequestSpec(
                    instance_id="i-1", resources=servers_pb2.ServerResources(vcpus=1, ram_mb=4096, disk_gb=1)
                )
            )
            out = await stub.ExplainPlacement(request)
            request.spec.resources.ram_mb = 1024
            fits = await stub.ExplainPlacement(request)
    finally:
        await manager.stop()
    assert out.selected_host == "" and out.metadata["filter"] == "RamFilter"
    assert "4096 MB RAM needed, at most 2048 MB free" in out.message
    assert fits.selected_host == "h1" and [h.host for h in fits.hosts] == ["h1"]


async def test_no_compute_up_is_an_outage_not_a_verdict(store: Store) -> None:
    """A host that reported capabilities but whose compute is gone (or no host at all): the build
    waits for one (UNAVAILABLE, NO_COMPUTE_UP) instead of going to ERROR at once."""
    caps = state_pb2.HostCapabilities(host="h1", vcpus=4, ram_mb=2048, disk_gb=40)
    await store.put(keys.host_capabilities("h1"), caps.SerializeToString())  # no services/compute/h1
    await building(store, "i-1")
    manager, spec = build(SchedulerSettings(host="s1"), store)
    await manager.start()
    try:
        async with serving(spec) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            resources = servers_pb2.ServerResources(vcpus=1, ram_mb=512, disk_gb=1)
            request = scheduler_pb2.SelectDestinationsRequest(
                spec=scheduler_pb2.RequestSpec(instance_id="i-1", resources=resources)
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.SelectDestinations(request)
    finally:
        await manager.stop()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    err = from_rpc_error(info.value)
    assert err.reason == "NO_COMPUTE_UP"
    assert "ComputeFilter removed 1 of 1 host (h1: compute service is down)" in err.message

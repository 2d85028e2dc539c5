"""The servicegroup's gRPC service as built by ``main.build``: list, update, stream, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from services.core import keys
from services.core.etcd import Store
from services.core.interceptors import RequestInterceptor
from services.core.runner import ServiceSpec
from services.core.service_members import DISABLED, UP
from services.servicegroup.main import SERVICE_NAME, build
from services.servicegroup.settings import ServiceGroupSettings
from stratus.servicegroup.v1 import servicegroup_pb2, servicegroup_pb2_grpc
from stratus.state.v1 import state_pb2

EVENT_WAIT_S = 30.0  # a guard against hanging, not a timing assertion


async def eventually(check: Callable[[], bool]) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


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


async def test_servicegroup_over_grpc(store: Store) -> None:
    manager, spec = build(ServiceGroupSettings(host="sg1"), store)
    assert spec.binary == "servicegroup" and list(spec.service_names) == [SERVICE_NAME]
    assert SERVICE_NAME == "stratus.servicegroup.v1.ServiceGroup"
    await manager.start()
    try:
        async with serving(spec) as channel:
            stub = servicegroup_pb2_grpc.ServiceGroupStub(channel)
            stream = stub.WatchMembers(servicegroup_pb2.WatchMembersRequest(binary="compute"))
            await eventually(lambda: len(manager._events) == 1)  # the handler subscribes once it runs
            record = state_pb2.ServiceRecord(binary="compute", host="c1", endpoint="c1:9000")
            await store.put(keys.service("compute", "c1"), record.SerializeToString())
            event = await asyncio.wait_for(stream.read(), EVENT_WAIT_S)
            assert (event.type, event.member.host) == (servicegroup_pb2.MEMBER_EVENT_TYPE_UP, "c1")

            listed = await stub.ListMembers(servicegroup_pb2.ListMembersRequest(binary="compute"))
            assert [(m.host, m.state) for m in listed.members] == [("c1", UP)]
            updated = await stub.UpdateMember(
                servicegroup_pb2.UpdateMemberRequest(binary="compute", host="c1", status=DISABLED, disabled_reason="")
            )
            assert (updated.status, updated.disabled_reason) == (DISABLED, "")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.UpdateMember(servicegroup_pb2.UpdateMemberRequest(binary="compute", host="nowhere"))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND

            stream.cancel()
            await eventually(lambda: len(manager._events) == 0)  # cancelling the call ends the subscription
    finally:
        await manager.stop()

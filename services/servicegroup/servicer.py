"""gRPC handlers for ``stratus.servicegroup.v1.ServiceGroup``: unpack, call the manager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.servicegroup.manager import MEMBERS_PAGE_MOST, ServiceGroupManager
from stratus.servicegroup.v1 import servicegroup_pb2, servicegroup_pb2_grpc
from stratus.v1 import services_pb2


class ServiceGroupServicer(servicegroup_pb2_grpc.ServiceGroupServicer):
    def __init__(self, manager: ServiceGroupManager) -> None:
        self._manager = manager

    async def ListMembers(
        self, request: servicegroup_pb2.ListMembersRequest, context: grpc.aio.ServicerContext
    ) -> servicegroup_pb2.ListMembersResponse:
        size = min(request.page_size, MEMBERS_PAGE_MOST) if request.page_size > 0 else MEMBERS_PAGE_MOST
        members, last = self._manager.members_page(request.binary, request.host, request.page_token, size)
        return servicegroup_pb2.ListMembersResponse(members=members, next_page_token=last)

    async def UpdateMember(
        self, request: servicegroup_pb2.UpdateMemberRequest, context: grpc.aio.ServicerContext
    ) -> services_pb2.Service:
        return await self._manager.update_member(
            request.binary,
            request.host,
            request.status,
            disabled_reason=request.disabled_reason if request.HasField("disabled_reason") else None,
            forced_down=request.forced_down if request.HasField("forced_down") else None,
        )

    async def WatchMembers(
        self, request: servicegroup_pb2.WatchMembersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[servicegroup_pb2.MemberEvent]:
        with self._manager.watch_members(request.binary) as events:
            async for event in events:
                yield event

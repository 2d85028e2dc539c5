"""Thin gRPC handlers for stratus.v1.ServerGroups."""

from __future__ import annotations

from typing import Any

from services.api.handling import Ctx, bounded
from services.api.server_groups.manager import ServerGroupsManager
from stratus.v1 import servergroups_pb2, servergroups_pb2_grpc


@bounded
class ServerGroupsServicer(servergroups_pb2_grpc.ServerGroupsServicer):
    def __init__(self, groups: ServerGroupsManager) -> None:
        self.m = groups

    async def CreateServerGroup(self, request: servergroups_pb2.CreateServerGroupRequest, context: Ctx) -> Any:
        return await self.m.create(request.server_group, request.HasField("server_group"))

    async def GetServerGroup(self, request: servergroups_pb2.GetServerGroupRequest, context: Ctx) -> Any:
        return await self.m.get(request.id)

    async def ListServerGroups(self, request: servergroups_pb2.ListServerGroupsRequest, context: Ctx) -> Any:
        return await self.m.list(request)

    async def DeleteServerGroup(self, request: servergroups_pb2.DeleteServerGroupRequest, context: Ctx) -> Any:
        await self.m.delete(request.id)
        return servergroups_pb2.DeleteServerGroupResponse()

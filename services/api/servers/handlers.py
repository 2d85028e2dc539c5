"""Thin gRPC handlers for stratus.v1.Servers: unpack, call the manager, return."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from services.api.flows import action_log
from services.api.handling import Ctx, bounded
from services.api.servers.manager import ServersManager
from services.api.validation import REQUEST_ID
from stratus.v1 import images_pb2, servers_pb2, servers_pb2_grpc

S = TypeVar("S")


def caller_request_ids(cls: type[S]) -> type[S]:
    """Every unary method of the servicer records the caller's ``x-request-id`` metadata (when it is
    a valid request id) as the request id of the actions it starts (action_log)."""
    for name, method in list(vars(cls).items()):
        if name[:1].isupper() and inspect.iscoroutinefunction(method):
            setattr(cls, name, _tagged(method))
    return cls


def _tagged(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Ctx) -> Any:
        given = dict((k, v) for k, v in (context.invocation_metadata() or ()) if isinstance(v, str))
        wanted = given.get("x-request-id", "")
        action_log.bind_request_id(wanted if REQUEST_ID.match(wanted) else "")
        return await method(self, request, context)

    return unary


@bounded
@caller_request_ids
class ServersServicer(servers_pb2_grpc.ServersServicer):
    def __init__(self, servers: ServersManager) -> None:
        self.m = servers

    async def CreateServer(self, request: servers_pb2.CreateServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.create(request)

    async def GetServer(self, request: servers_pb2.GetServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.get(request.id)

    async def ListServers(self, request: servers_pb2.ListServersRequest, context: Ctx) -> Any:
        return await self.m.list(request)

    async def DeleteServer(self, request: servers_pb2.DeleteServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.delete(request.id)

    async def StartServer(self, request: servers_pb2.StartServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "start")

    async def StopServer(self, request: servers_pb2.StopServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "stop")

    async def RebootServer(self, request: servers_pb2.RebootServerRequest, context: Ctx) -> servers_pb2.Server:
        hard = request.type == servers_pb2.RebootType.REBOOT_TYPE_HARD  # UNSPECIFIED: a soft reboot
        return await self.m.action(request.id, "reboot-hard" if hard else "reboot")

    async def PauseServer(self, request: servers_pb2.PauseServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "pause")

    async def UnpauseServer(self, request: servers_pb2.UnpauseServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "unpause")

    async def SuspendServer(self, request: servers_pb2.SuspendServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "suspend")

    async def ResumeServer(self, request: servers_pb2.ResumeServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.action(request.id, "resume")

    async def ResizeServer(self, request: servers_pb2.ResizeServerRequest, context: Ctx) -> servers_pb2.Server:
        return await self.m.resize(request.id, request.flavor_id)

    async def ConfirmServerResize(self, request: servers_pb2.ConfirmServerResizeRequest, context: Ctx) -> Any:
        return await self.m.action(request.id, "confirm-resize")

    async def RevertServerResize(self, request: servers_pb2.RevertServerResizeRequest, context: Ctx) -> Any:
        return await self.m.action(request.id, "revert-resize")

    async def GetServerConsoleOutput(self, request: servers_pb2.GetServerConsoleOutputRequest, context: Ctx) -> Any:
        output = await self.m.console_output(request.id, request.lines)
        return servers_pb2.GetServerConsoleOutputResponse(output=output)

    async def SnapshotServer(self, request: servers_pb2.SnapshotServerRequest, context: Ctx) -> images_pb2.Image:
        return await self.m.snapshot(request.id, request.image_name)

    async def ListServerActions(self, request: servers_pb2.ListServerActionsRequest, context: Ctx) -> Any:
        return await self.m.list_actions(request)

    async def WatchServers(
        self, request: servers_pb2.WatchServersRequest, context: Ctx
    ) -> AsyncIterator[servers_pb2.ServerEvent]:
        async for event in self.m.watch(request):
            yield event

"""Thin gRPC handlers for stratus.v1: unpack, call the manager, return. Errors map in the interceptor."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from services.api import action_log
from services.api.admin import AdminManager
from services.api.aggregates import AggregatesManager
from services.api.flavors import FlavorsManager
from services.api.image_store import ImageStoreManager
from services.api.images import ImagesManager
from services.api.keypairs import KeypairsManager
from services.api.placement import PlacementManager
from services.api.quota_sets import QuotaSetsManager
from services.api.server_groups import ServerGroupsManager
from services.api.servers import ServersManager
from services.api.validation import REQUEST_ID, check_request
from stratus.imagestore.v1 import imagestore_pb2, imagestore_pb2_grpc
from stratus.v1 import (
    aggregates_pb2,
    aggregates_pb2_grpc,
    flavors_pb2,
    flavors_pb2_grpc,
    hosts_pb2,
    hosts_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    keypairs_pb2,
    keypairs_pb2_grpc,
    placement_pb2,
    placement_pb2_grpc,
    quotas_pb2,
    quotas_pb2_grpc,
    servergroups_pb2,
    servergroups_pb2_grpc,
    servers_pb2,
    servers_pb2_grpc,
    services_pb2,
    services_pb2_grpc,
)

Ctx = Any
S = TypeVar("S")


async def _checked_stream(messages: AsyncIterator[Message]) -> AsyncIterator[Message]:
    async for message in messages:
        check_request(message)
        yield message


def _checked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with its request (or each message of a request stream) bounded first."""

    def checked(request: Any) -> Any:
        if isinstance(request, Message):
            check_request(request)
            return request
        return _checked_stream(request)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Ctx) -> AsyncIterator[Any]:
            async for item in method(self, checked(request), context):
                yield item

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Ctx) -> Any:
        return await method(self, checked(request), context)

    return unary


def bounded(cls: type[S]) -> type[S]:
    """Every public method of a stratus.v1 servicer refuses a request out of bounds
    (``validation.check_request``) before its handler runs."""
    for name, method in list(vars(cls).items()):
        if name[:1].isupper() and inspect.isfunction(method):
            setattr(cls, name, _checked(method))
    return cls


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


@bounded
class FlavorsServicer(flavors_pb2_grpc.FlavorsServicer):
    def __init__(self, flavors: FlavorsManager) -> None:
        self.m = flavors

    async def CreateFlavor(self, request: flavors_pb2.CreateFlavorRequest, context: Ctx) -> flavors_pb2.Flavor:
        return await self.m.create(request.flavor, request.HasField("flavor"))

    async def GetFlavor(self, request: flavors_pb2.GetFlavorRequest, context: Ctx) -> flavors_pb2.Flavor:
        return await self.m.get(request.id)

    async def ListFlavors(self, request: flavors_pb2.ListFlavorsRequest, context: Ctx) -> Any:
        return await self.m.list(request.page_size, request.page_token)

    async def DeleteFlavor(self, request: flavors_pb2.DeleteFlavorRequest, context: Ctx) -> Any:
        await self.m.delete(request.id)
        return flavors_pb2.DeleteFlavorResponse()


@bounded
class ImagesServicer(images_pb2_grpc.ImagesServicer):
    def __init__(self, images: ImagesManager) -> None:
        self.m = images

    async def UploadImage(self, request_iterator: AsyncIterator[Any], context: Ctx) -> images_pb2.Image:
        return await self.m.upload(request_iterator)

    async def GetImage(self, request: images_pb2.GetImageRequest, context: Ctx) -> images_pb2.Image:
        return await self.m.get(request.id)

    async def ListImages(self, request: images_pb2.ListImagesRequest, context: Ctx) -> Any:
        return await self.m.list(request.page_size, request.page_token)

    async def DeleteImage(self, request: images_pb2.DeleteImageRequest, context: Ctx) -> Any:
        await self.m.delete(request.id)
        return images_pb2.DeleteImageResponse()

    async def DownloadImage(self, request: images_pb2.DownloadImageRequest, context: Ctx) -> AsyncIterator[Any]:
        async for chunk in self.m.download(request.id):
            yield images_pb2.DownloadImageResponse(chunk=chunk)

    async def UpdateImage(self, request: images_pb2.UpdateImageRequest, context: Ctx) -> images_pb2.Image:
        return await self.m.update(request)

    async def AddImageMember(self, request: images_pb2.AddImageMemberRequest, context: Ctx) -> Any:
        return await self.m.add_member(request.image_id, request.project_id)

    async def RemoveImageMember(self, request: images_pb2.RemoveImageMemberRequest, context: Ctx) -> Any:
        await self.m.remove_member(request.image_id, request.project_id)
        return images_pb2.RemoveImageMemberResponse()

    async def ListImageMembers(self, request: images_pb2.ListImageMembersRequest, context: Ctx) -> Any:
        return await self.m.list_members(request.image_id)


class ImageStoreServicer(imagestore_pb2_grpc.ImageStoreServicer):
    """Internal: image bytes for the computes (the service token only; see auth.py)."""

    def __init__(self, store: ImageStoreManager) -> None:
        self.m = store

    async def ReadImage(self, request: imagestore_pb2.ReadImageRequest, context: Ctx) -> AsyncIterator[Any]:
        async for message in self.m.read(request.image_id):
            yield message

    async def WriteImage(self, request_iterator: AsyncIterator[Any], context: Ctx) -> Any:
        return imagestore_pb2.WriteImageResponse(image=await self.m.write(request_iterator))


@bounded
class ServicesServicer(services_pb2_grpc.ServicesServicer):
    def __init__(self, admin: AdminManager) -> None:
        self.m = admin

    async def ListServices(self, request: services_pb2.ListServicesRequest, context: Ctx) -> Any:
        return services_pb2.ListServicesResponse(services=await self.m.list_services(request.binary, request.host))

    async def UpdateService(self, request: services_pb2.UpdateServiceRequest, context: Ctx) -> Any:
        return await self.m.update_service(request)


@bounded
class HostsServicer(hosts_pb2_grpc.HostsServicer):
    def __init__(self, admin: AdminManager) -> None:
        self.m = admin

    async def ListHosts(self, request: hosts_pb2.ListHostsRequest, context: Ctx) -> Any:
        return hosts_pb2.ListHostsResponse(hosts=await self.m.list_hosts())

    async def GetHost(self, request: hosts_pb2.GetHostRequest, context: Ctx) -> hosts_pb2.Host:
        return await self.m.get_host(request.host)


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


@bounded
class AggregatesServicer(aggregates_pb2_grpc.AggregatesServicer):
    def __init__(self, aggregates: AggregatesManager) -> None:
        self.m = aggregates

    async def CreateAggregate(self, request: aggregates_pb2.CreateAggregateRequest, context: Ctx) -> Any:
        return await self.m.create(request.aggregate, request.HasField("aggregate"))

    async def GetAggregate(self, request: aggregates_pb2.GetAggregateRequest, context: Ctx) -> Any:
        return await self.m.get(request.id)

    async def ListAggregates(self, request: aggregates_pb2.ListAggregatesRequest, context: Ctx) -> Any:
        return aggregates_pb2.ListAggregatesResponse(aggregates=await self.m.list())

    async def DeleteAggregate(self, request: aggregates_pb2.DeleteAggregateRequest, context: Ctx) -> Any:
        await self.m.delete(request.id)
        return aggregates_pb2.DeleteAggregateResponse()

    async def SetAggregateMetadata(self, request: aggregates_pb2.SetAggregateMetadataRequest, context: Ctx) -> Any:
        return await self.m.set_metadata(request.id, request.metadata)

    async def AddAggregateHost(self, request: aggregates_pb2.AddAggregateHostRequest, context: Ctx) -> Any:
        return await self.m.add_host(request.id, request.host)

    async def RemoveAggregateHost(self, request: aggregates_pb2.RemoveAggregateHostRequest, context: Ctx) -> Any:
        return await self.m.remove_host(request.id, request.host)


@bounded
class PlacementServicer(placement_pb2_grpc.PlacementServicer):
    def __init__(self, placement: PlacementManager) -> None:
        self.m = placement

    async def ExplainPlacement(self, request: placement_pb2.ExplainPlacementRequest, context: Ctx) -> Any:
        return await self.m.explain(request)


@bounded
class KeypairsServicer(keypairs_pb2_grpc.KeypairsServicer):
    def __init__(self, keypairs: KeypairsManager) -> None:
        self.m = keypairs

    async def CreateKeypair(self, request: keypairs_pb2.CreateKeypairRequest, context: Ctx) -> Any:
        return await self.m.create(request.name, request.public_key)

    async def GetKeypair(self, request: keypairs_pb2.GetKeypairRequest, context: Ctx) -> Any:
        return await self.m.get(request.name)

    async def ListKeypairs(self, request: keypairs_pb2.ListKeypairsRequest, context: Ctx) -> Any:
        return await self.m.list(request)

    async def DeleteKeypair(self, request: keypairs_pb2.DeleteKeypairRequest, context: Ctx) -> Any:
        await self.m.delete(request.name)
        return keypairs_pb2.DeleteKeypairResponse()


@bounded
class QuotasServicer(quotas_pb2_grpc.QuotasServicer):
    def __init__(self, quota_sets: QuotaSetsManager) -> None:
        self.m = quota_sets

    async def GetQuotaSet(self, request: quotas_pb2.GetQuotaSetRequest, context: Ctx) -> Any:
        return await self.m.get(request.project_id)

    async def UpdateQuotaSet(self, request: quotas_pb2.UpdateQuotaSetRequest, context: Ctx) -> Any:
        return await self.m.update(request)

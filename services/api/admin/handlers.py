"""Thin gRPC handlers for the admin services: stratus.v1.Services, Hosts, Aggregates and Placement."""

from __future__ import annotations

from typing import Any

from services.api.admin.aggregates import AggregatesManager
from services.api.admin.hosts import AdminManager
from services.api.admin.placement import PlacementManager
from services.api.handling import Ctx, bounded
from stratus.v1 import (
    aggregates_pb2,
    aggregates_pb2_grpc,
    hosts_pb2,
    hosts_pb2_grpc,
    placement_pb2,
    placement_pb2_grpc,
    services_pb2,
    services_pb2_grpc,
)


@bounded
class ServicesServicer(services_pb2_grpc.ServicesServicer):
    def __init__(self, admin: AdminManager) -> None:
        self.m = admin

    async def ListServices(self, request: services_pb2.ListServicesRequest, context: Ctx) -> Any:
        return await self.m.services_page(request.binary, request.host, request.page_size, request.page_token)

    async def UpdateService(self, request: services_pb2.UpdateServiceRequest, context: Ctx) -> Any:
        return await self.m.update_service(request)


@bounded
class HostsServicer(hosts_pb2_grpc.HostsServicer):
    def __init__(self, admin: AdminManager) -> None:
        self.m = admin

    async def ListHosts(self, request: hosts_pb2.ListHostsRequest, context: Ctx) -> Any:
        return await self.m.list_hosts(request.page_size, request.page_token)

    async def GetHost(self, request: hosts_pb2.GetHostRequest, context: Ctx) -> hosts_pb2.Host:
        return await self.m.get_host(request.host)


@bounded
class AggregatesServicer(aggregates_pb2_grpc.AggregatesServicer):
    def __init__(self, aggregates: AggregatesManager) -> None:
        self.m = aggregates

    async def CreateAggregate(self, request: aggregates_pb2.CreateAggregateRequest, context: Ctx) -> Any:
        return await self.m.create(request.aggregate, request.HasField("aggregate"))

    async def GetAggregate(self, request: aggregates_pb2.GetAggregateRequest, context: Ctx) -> Any:
        return await self.m.get(request.id)

    async def ListAggregates(self, request: aggregates_pb2.ListAggregatesRequest, context: Ctx) -> Any:
        return await self.m.list(request.page_size, request.page_token)

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

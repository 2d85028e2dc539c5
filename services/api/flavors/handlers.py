"""Thin gRPC handlers for stratus.v1.Flavors."""

from __future__ import annotations

from typing import Any

from services.api.flavors.manager import FlavorsManager
from services.api.handling import Ctx, bounded
from stratus.v1 import flavors_pb2, flavors_pb2_grpc


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

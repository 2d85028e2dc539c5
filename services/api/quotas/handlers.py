"""Thin gRPC handlers for stratus.v1.Quotas."""

from __future__ import annotations

from typing import Any

from services.api.handling import Ctx, bounded
from services.api.quotas.sets import QuotaSetsManager
from stratus.v1 import quotas_pb2, quotas_pb2_grpc


@bounded
class QuotasServicer(quotas_pb2_grpc.QuotasServicer):
    def __init__(self, quota_sets: QuotaSetsManager) -> None:
        self.m = quota_sets

    async def GetQuotaSet(self, request: quotas_pb2.GetQuotaSetRequest, context: Ctx) -> Any:
        return await self.m.get(request.project_id)

    async def UpdateQuotaSet(self, request: quotas_pb2.UpdateQuotaSetRequest, context: Ctx) -> Any:
        return await self.m.update(request)


"""gRPC handlers for ``stratus.scheduler.v1.Scheduler``: unpack, call the manager."""

from __future__ import annotations

import grpc

from services.scheduler.manager import SchedulerManager
from stratus.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from stratus.v1 import placement_pb2


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, manager: SchedulerManager) -> None:
        self._manager = manager

    async def SelectDestinations(
        self, request: scheduler_pb2.SelectDestinationsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.SelectDestinationsResponse:
        # 0 (unset) takes the configured number of alternates; revision 0: the record is read there.
        record = (request.instance, request.instance_revision) if request.instance_revision > 0 else None
        return await self._manager.select_destinations(request.spec, request.alternates or None, record)

    async def ExplainPlacement(
        self, request: scheduler_pb2.ExplainPlacementRequest, context: grpc.aio.ServicerContext
    ) -> placement_pb2.PlacementExplanation:
        return await self._manager.explain_placement(request.spec)

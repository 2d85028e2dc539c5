"""The compute's gRPC handlers: unpack, call the manager, reply. Errors map in the interceptor."""

from __future__ import annotations

import grpc

from services.compute.manager import ComputeManager
from stratus.compute.v1 import compute_pb2, compute_pb2_grpc


class ComputeServicer(compute_pb2_grpc.ComputeServicer):
    def __init__(self, manager: ComputeManager) -> None:
        self._manager = manager

    async def BuildInstance(
        self, request: compute_pb2.BuildInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.BuildInstanceResponse:
        await self._manager.build_instance(request.instance_id)
        return compute_pb2.BuildInstanceResponse()

    async def DestroyInstance(
        self, request: compute_pb2.DestroyInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.DestroyInstanceResponse:
        await self._manager.destroy_instance(request.instance_id)
        return compute_pb2.DestroyInstanceResponse()

    async def PowerOnInstance(
        self, request: compute_pb2.PowerOnInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.PowerOnInstanceResponse:
        await self._manager.power_on(request.instance_id)
        return compute_pb2.PowerOnInstanceResponse()

    async def PowerOffInstance(
        self, request: compute_pb2.PowerOffInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.PowerOffInstanceResponse:
        await self._manager.power_off(request.instance_id)
        return compute_pb2.PowerOffInstanceResponse()

    async def RebootInstance(
        self, request: compute_pb2.RebootInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.RebootInstanceResponse:
        await self._manager.reboot(request.instance_id, request.hard)
        return compute_pb2.RebootInstanceResponse()

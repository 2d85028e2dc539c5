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
        await self._manager.accept_build(request.instance_id, request.action_id)
        return compute_pb2.BuildInstanceResponse()

    async def DestroyInstance(
        self, request: compute_pb2.DestroyInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.DestroyInstanceResponse:
        await self._manager.destroy_instance(request.instance_id, request.action_id)
        return compute_pb2.DestroyInstanceResponse()

    async def PowerOnInstance(
        self, request: compute_pb2.PowerOnInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.PowerOnInstanceResponse:
        await self._manager.accept_power("power_on", request.instance_id, action_id=request.action_id)
        return compute_pb2.PowerOnInstanceResponse()

    async def PowerOffInstance(
        self, request: compute_pb2.PowerOffInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.PowerOffInstanceResponse:
        await self._manager.accept_power("power_off", request.instance_id, action_id=request.action_id)
        return compute_pb2.PowerOffInstanceResponse()

    async def RebootInstance(
        self, request: compute_pb2.RebootInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.RebootInstanceResponse:
        await self._manager.accept_power("reboot", request.instance_id, request.hard, action_id=request.action_id)
        return compute_pb2.RebootInstanceResponse()

    async def PauseInstance(
        self, request: compute_pb2.PauseInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.PauseInstanceResponse:
        await self._manager.accept_power("pause", request.instance_id, action_id=request.action_id)
        return compute_pb2.PauseInstanceResponse()

    async def UnpauseInstance(
        self, request: compute_pb2.UnpauseInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.UnpauseInstanceResponse:
        await self._manager.accept_power("unpause", request.instance_id, action_id=request.action_id)
        return compute_pb2.UnpauseInstanceResponse()

    async def SuspendInstance(
        self, request: compute_pb2.SuspendInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.SuspendInstanceResponse:
        await self._manager.accept_power("suspend", request.instance_id, action_id=request.action_id)
        return compute_pb2.SuspendInstanceResponse()

    async def ResumeInstance(
        self, request: compute_pb2.ResumeInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.ResumeInstanceResponse:
        await self._manager.accept_power("resume", request.instance_id, action_id=request.action_id)
        return compute_pb2.ResumeInstanceResponse()

    async def ResizeInstance(
        self, request: compute_pb2.ResizeInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.ResizeInstanceResponse:
        await self._manager.accept_resize(request.instance_id, request.action_id)
        return compute_pb2.ResizeInstanceResponse()

    async def ConfirmResizeInstance(
        self, request: compute_pb2.ConfirmResizeInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.ConfirmResizeInstanceResponse:
        await self._manager.confirm_resize(request.instance_id, request.action_id)
        return compute_pb2.ConfirmResizeInstanceResponse()

    async def RevertResizeInstance(
        self, request: compute_pb2.RevertResizeInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.RevertResizeInstanceResponse:
        await self._manager.revert_resize(request.instance_id, request.action_id)
        return compute_pb2.RevertResizeInstanceResponse()

    async def GetConsoleOutput(
        self, request: compute_pb2.GetConsoleOutputRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.GetConsoleOutputResponse:
        output = await self._manager.console_output(request.instance_id, request.lines)
        return compute_pb2.GetConsoleOutputResponse(output=output)

    async def SnapshotInstance(
        self, request: compute_pb2.SnapshotInstanceRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.SnapshotInstanceResponse:
        await self._manager.accept_snapshot(request.instance_id, request.image_id, request.action_id)
        return compute_pb2.SnapshotInstanceResponse()

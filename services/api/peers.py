"""Calls from the api to the scheduler, computes and servicegroup, with their errors as domain errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.core import keys
from services.core.channels import ChannelPool, ServiceDirectory
from services.core.errors import StratusError, Unavailable, from_rpc_error
from stratus.compute.v1 import compute_pb2_grpc
from stratus.scheduler.v1 import scheduler_pb2_grpc
from stratus.servicegroup.v1 import servicegroup_pb2_grpc

R = TypeVar("R")
CALL_TIMEOUT_S = 120.0


async def call(rpc: Callable[..., Awaitable[R]], request: Any, timeout_s: float = CALL_TIMEOUT_S) -> R:
    try:
        return await rpc(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from exc


class Peers:
    def __init__(self, directory: ServiceDirectory, channels: ChannelPool) -> None:
        self.directory = directory
        self._channels = channels

    def _endpoint(self, binary: str, host: str | None = None) -> str:
        endpoint = self.directory.endpoint(binary, host) if host else self.directory.pick(binary)
        if endpoint is None:
            where = f" on {host}" if host else ""
            raise Unavailable(f"no {binary} service is running{where}", reason=f"{binary.upper()}_DOWN")
        return endpoint

    def scheduler(self) -> scheduler_pb2_grpc.SchedulerStub:
        return scheduler_pb2_grpc.SchedulerStub(self._channels.get(self._endpoint("scheduler")))

    def compute(self, host: str) -> compute_pb2_grpc.ComputeStub:
        return compute_pb2_grpc.ComputeStub(self._channels.get(self._endpoint("compute", host)))

    def incarnation(self, binary: str, host: str) -> int:
        """Which process serves ``binary`` on ``host`` (the lease it registered with), 0 if none:
        a different number later means the process that was asked is gone."""
        entry = self.directory.cache.entries.get(keys.service(binary, host))
        return entry.lease if entry else 0

    def servicegroup(self) -> servicegroup_pb2_grpc.ServiceGroupStub:
        return servicegroup_pb2_grpc.ServiceGroupStub(self._channels.get(self._endpoint("servicegroup")))


__all__ = ["Peers", "StratusError", "call"]

"""The Service half of Service + Manager: a gRPC server with health and reflection around a
Manager, registered in etcd under the process's lease, drained on SIGTERM.

Shutdown order: stop reporting SERVING, revoke the lease (peers stop sending work at once),
drain in-flight calls for ``drain_s``, stop the manager, flush spans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.core import keys, message_limits
from services.core.callers import CallerRoles
from services.core.config import CommonSettings
from services.core.errors import Unimplemented
from services.core.etcd import Store
from services.core.interceptors import Authenticator, RequestInterceptor
from services.core.private_files import make_private
from services.core.reflection_pool import MethodAwarePool
from services.core.registration import Registration
from services.core.telemetry import setup_logging, setup_tracing, shutdown_tracing
from services.core.tls import add_port
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)
VERSION = "0.1.0"

S = TypeVar("S", bound=CommonSettings)
AddServicer = Callable[[Any, grpc.aio.Server], None]


class Manager(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def lease_records(self) -> dict[str, bytes]: ...


@dataclass
class ServiceSpec:
    binary: str
    servicers: Sequence[tuple[AddServicer, Any]]
    service_names: Sequence[str]
    authenticate: Authenticator | None = None
    on_registered: Callable[[Registration], None] | None = field(default=None)


def advertised_endpoint(listen: str, port: int, host: str) -> str:
    address = host if listen in ("", "0.0.0.0", "::", "[::]") else listen
    return f"{address}:{port}"


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    async def List(self, request: Any, context: Any) -> Any:
        # grpcio-health-checking's aio servicer lacks List: its generated stub raises, logged as an ERROR
        raise Unimplemented("Health/List is not served: ask Check or Watch about a service")


def _grpc_server(spec: ServiceSpec, settings: CommonSettings) -> tuple[grpc.aio.Server, Any]:
    # The api authenticates tokens; an internal port the role in its caller's certificate.
    callers = None if spec.authenticate else CallerRoles(enforce=settings.internal_tls() is not None)
    interceptor = RequestInterceptor(spec.authenticate, callers)
    server = grpc.aio.server(interceptors=[interceptor], options=message_limits.options())
    for add, servicer in spec.servicers:
        add(servicer, server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*spec.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server, pool=MethodAwarePool())
    return server, health_servicer


def _service_record(spec: ServiceSpec, settings: CommonSettings, endpoint: str) -> state_pb2.ServiceRecord:
    started = timestamp_pb2.Timestamp()
    started.GetCurrentTime()
    return state_pb2.ServiceRecord(
        binary=spec.binary, host=settings.host, endpoint=endpoint, version=VERSION, started_at=started,
        pid=os.getpid(),
    )  # fmt: skip


async def serve(settings: CommonSettings, store: Store, manager: Manager, spec: ServiceSpec) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server, health_servicer = _grpc_server(spec, settings)
    port = add_port(server, f"{settings.listen}:{settings.port}", settings.server_tls())
    endpoint = advertised_endpoint(settings.listen, port, settings.host)
    record = _service_record(spec, settings, endpoint)
    owner_key = keys.service(spec.binary, settings.host)
    registration = Registration(
        store, settings.lease_ttl_s, lambda: {owner_key: record.SerializeToString(), **manager.lease_records()},
        owner_key, on_conflict=stop.set,  # the name went to another process: stop, don't serve as a ghost
    )  # fmt: skip
    try:
        await manager.start()
        await server.start()
        await registration.start()
        if spec.on_registered:
            spec.on_registered(registration)
        for name in ("", *spec.service_names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s %s serving on %s", spec.binary, settings.host, endpoint)
        await stop.wait()
        log.info("%s %s stopping: draining for up to %.1fs", spec.binary, settings.host, settings.drain_s)
    finally:
        await health_servicer.enter_graceful_shutdown()
        await registration.close()
        await server.stop(settings.drain_s)
        await manager.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("%s %s stopped", spec.binary, settings.host)


def run_process(settings: S, build: Callable[[S, Store], tuple[Manager, ServiceSpec]]) -> None:
    """Entry point for ``stratus <binary>``: logging, tracing, etcd, then ``serve`` until SIGTERM."""
    make_private()  # umask 077: what this process and its children write, only its user reads
    binary = type(settings).binary
    setup_logging(binary, settings.host, settings.log_level, settings.log_format)
    setup_tracing(binary, settings.host)

    async def main() -> None:
        store = Store(settings.etcd, settings.prefix, settings.etcd_tls())
        await store.connect()
        try:
            manager, spec = build(settings, store)
            await serve(settings, store, manager, spec)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    finally:
        shutdown_tracing()

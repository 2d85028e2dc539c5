"""The role check of an internal port, on real mutual-TLS ports: each role's certificate calls what
the table allows it and is refused the rest; a port without TLS takes everyone (``--insecure``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.core.callers import ALLOWED_CALLERS, CallerRoles, service_of
from services.core.interceptors import RequestInterceptor
from services.core.tls import ServerTls, TlsFiles, add_port, aio_channel
from services.launcher.certs import ROLES, StackTls, ensure_stack_tls

SANS = ["localhost", "127.0.0.1"]
SERVICES = [*ALLOWED_CALLERS, "stratus.other.v1.Unlisted"]


def echo_handlers() -> list[grpc.GenericRpcHandler]:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    return [
        grpc.method_handlers_generic_handler(name, {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
        for name in SERVICES
    ]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> StackTls:
    return ensure_stack_tls(tmp_path_factory.mktemp("callers"), SANS)


async def serving(tls: ServerTls | None, callers: CallerRoles) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=[RequestInterceptor(None, callers)])
    server.add_generic_rpc_handlers(echo_handlers())
    port = add_port(server, "127.0.0.1:0", tls)
    await server.start()
    return server, f"127.0.0.1:{port}"


async def call(endpoint: str, identity: TlsFiles | None, service: str) -> grpc.StatusCode:
    async with aio_channel(endpoint, identity) as channel:
        try:
            await channel.unary_unary(f"/{service}/Echo")(b"hi", timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def internal_port(made: StackTls) -> AsyncIterator[str]:
    server, endpoint = await serving(ServerTls(made.roles["compute"], require_client_cert=True), CallerRoles(True))
    yield endpoint
    await server.stop(None)


async def test_each_role_calls_what_the_table_allows_and_nothing_else(made: StackTls, internal_port: str) -> None:
    got = {
        (role, service): await call(internal_port, made.roles[role], service) for role in ROLES for service in SERVICES
    }
    expected = {
        (role, service): grpc.StatusCode.OK
        if role in ALLOWED_CALLERS.get(service, ())
        else grpc.StatusCode.PERMISSION_DENIED
        for role in ROLES
        for service in SERVICES
    }
    assert got == expected
    assert expected[("api", "stratus.scheduler.v1.Scheduler")] == grpc.StatusCode.OK
    assert expected[("compute", "stratus.compute.v1.Compute")] == grpc.StatusCode.OK
    assert expected[("launcher", "stratus.compute.v1.Compute")] == grpc.StatusCode.PERMISSION_DENIED


async def test_a_certificate_of_the_stacks_ca_that_names_no_role_is_refused(made: StackTls, internal_port: str) -> None:
    # etcd's certificate is the stack's too, and a client's, but no role: refused everywhere.
    for service in SERVICES:
        assert await call(internal_port, made.etcd, service) == grpc.StatusCode.PERMISSION_DENIED
    assert await call(internal_port, None, "stratus.compute.v1.Compute") == grpc.StatusCode.UNAVAILABLE


async def test_a_port_without_tls_cannot_tell_who_calls_and_takes_everyone(caplog: pytest.LogCaptureFixture) -> None:
    server, endpoint = await serving(None, CallerRoles(False))
    try:
        assert "takes every caller" in caplog.text
        assert await call(endpoint, None, "stratus.scheduler.v1.Scheduler") == grpc.StatusCode.OK
    finally:
        await server.stop(None)


def test_the_table_names_every_internal_service_the_processes_serve() -> None:
    from stratus.compute.v1 import compute_pb2
    from stratus.scheduler.v1 import scheduler_pb2
    from stratus.servicegroup.v1 import servicegroup_pb2

    served = {
        s.full_name
        for m in (compute_pb2, scheduler_pb2, servicegroup_pb2)
        for s in m.DESCRIPTOR.services_by_name.values()
    }
    assert served == set(ALLOWED_CALLERS)
    assert service_of("/stratus.compute.v1.Compute/SpawnInstance") == "stratus.compute.v1.Compute"


def test_no_role_file_is_missing(made: StackTls) -> None:
    assert all(Path(files.cert).exists() and Path(files.key).exists() for files in made.roles.values())

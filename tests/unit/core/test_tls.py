"""TLS on real gRPC ports: a public port needs no client certificate, an internal one refuses a caller
without one signed by the CA, and plaintext stays plaintext when no files are given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.core.config import CommonSettings
from services.core.tls import ServerTls, TlsFiles, add_port, aio_channel, channel_credentials
from services.launcher.certs import StackTls, ensure_stack_tls, make_ca, write_pair

SANS = ["localhost", "127.0.0.1", "::1"]


@pytest.fixture
def made(tmp_path: Path) -> StackTls:
    return ensure_stack_tls(tmp_path, SANS)


async def serving(tls: ServerTls | None) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = add_port(server, "127.0.0.1:0", tls)
    await server.start()
    return server, f"127.0.0.1:{port}"


async def check(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


@pytest.fixture
async def internal_port(made: StackTls) -> AsyncIterator[str]:
    server, endpoint = await serving(ServerTls(made.roles["compute"], require_client_cert=True))
    yield endpoint
    await server.stop(None)


async def test_an_internal_port_takes_a_peer_with_the_stacks_certificate(made: StackTls, internal_port: str) -> None:
    assert await check(aio_channel(internal_port, made.roles["compute"])) == grpc.StatusCode.OK


async def test_an_internal_port_refuses_no_certificate_a_foreign_one_and_plaintext(
    made: StackTls, internal_port: str, tmp_path: Path
) -> None:
    no_cert = grpc.aio.secure_channel(internal_port, channel_credentials(made.ca))
    assert await check(no_cert) == grpc.StatusCode.UNAVAILABLE
    foreign = ensure_stack_tls(tmp_path / "other", SANS)  # another stack's CA signed this one
    mixed = TlsFiles(made.ca, foreign.roles["api"].cert, foreign.roles["api"].key)
    assert await check(aio_channel(internal_port, mixed)) == grpc.StatusCode.UNAVAILABLE
    assert await check(aio_channel(internal_port, None)) == grpc.StatusCode.UNAVAILABLE


async def test_a_public_port_needs_no_client_certificate_but_a_trusted_ca(made: StackTls, tmp_path: Path) -> None:
    server, endpoint = await serving(ServerTls(made.api, require_client_cert=False))
    try:
        assert await check(grpc.aio.secure_channel(endpoint, channel_credentials(made.ca))) == grpc.StatusCode.OK
        compute = made.roles["compute"]  # a peer's call (ImageStore)
        assert await check(aio_channel(endpoint, compute)) == grpc.StatusCode.OK
        write_pair(tmp_path / "other.pem", tmp_path / "other-key.pem", *make_ca())
        untrusting = grpc.aio.secure_channel(endpoint, channel_credentials(tmp_path / "other.pem"))
        assert await check(untrusting) == grpc.StatusCode.UNAVAILABLE
        assert await check(aio_channel(endpoint, None)) == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


async def test_without_files_ports_and_channels_stay_plaintext() -> None:
    server, endpoint = await serving(None)
    try:
        assert await check(aio_channel(endpoint, None)) == grpc.StatusCode.OK
    finally:
        await server.stop(None)


def test_settings_decide_public_mutual_or_plaintext(made: StackTls) -> None:
    assert CommonSettings().server_tls() is None and CommonSettings().internal_tls() is None
    files = made.roles["compute"]
    mutual = CommonSettings(tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key)
    assert mutual.server_tls() == ServerTls(made.roles["compute"], require_client_cert=True)
    public = CommonSettings(
        tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key, tls_public_cert=made.api.cert,
        tls_public_key=made.api.key,
    )  # fmt: skip
    assert public.server_tls() == ServerTls(made.api, require_client_cert=False)
    assert public.internal_tls() == made.roles["compute"]  # its calls to peers still show the internal identity


@pytest.mark.parametrize(
    "values",
    [
        {"tls_ca": "/ca.pem"},
        {"tls_cert": "/c.pem", "tls_key": "/k.pem"},
        {"tls_public_cert": "/p.pem", "tls_public_key": "/pk.pem"},
        {"etcd_cert": "/c.pem", "etcd_key": "/k.pem"},
        {"etcd_ca": "/ca.pem", "etcd_cert": "/c.pem"},
    ],
)
def test_incomplete_tls_settings_are_refused(values: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="go together"):
        CommonSettings(**values)  # type: ignore[arg-type]

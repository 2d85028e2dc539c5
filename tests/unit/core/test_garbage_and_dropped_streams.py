"""Bytes that are not the method's request are INVALID_ARGUMENT with a plain message, decided after
authentication (a caller without a valid token is UNAUTHENTICATED), logged at most at INFO: for a
unary call, a response stream, a request stream (at the bad message), an internal process's port
and the unguarded health and reflection services. A client dropping a response stream logs
nothing above DEBUG: the stream's generators unwind in the call's own task.

The server is composed as a process's is: OpenTelemetry's server interceptor first (what
``setup_tracing`` installs), then ours."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from services.core import context as reqctx
from services.core.errors import Unauthenticated, from_rpc_error
from services.core.interceptors import RequestInterceptor
from services.core.runner import HealthServicer
from stratus.v1 import images_pb2, servers_pb2

GARBAGE = b"\xff\xff\xff"  # a truncated varint: no message decodes from it
TOKEN = (("authorization", "Bearer good"),)
BAD_TOKEN = (("authorization", "Bearer forged"),)
SERVICE = "t.Garbage"


@dataclass
class Servicer:
    """Fake handlers over real request types; records what ran."""

    called: list[str] = field(default_factory=list)
    uploaded: list[Message] = field(default_factory=list)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    stream_tasks: list[asyncio.Task[Any] | None] = field(default_factory=list)

    async def unary(self, request: servers_pb2.GetServerRequest, context: Any) -> servers_pb2.Server:
        self.called.append("unary")
        return servers_pb2.Server(id=request.id)

    async def download(self, request: images_pb2.DownloadImageRequest, context: Any) -> AsyncIterator[Any]:
        self.called.append("download")
        self.stream_tasks.append(asyncio.current_task())
        try:
            while True:  # as fast as the transport takes them: the generator waits at its yield
                yield images_pb2.DownloadImageResponse(chunk=b"x" * 65536)
        finally:
            self.stream_tasks.append(asyncio.current_task())
            self.stream_closed.set()

    async def upload(self, requests: AsyncIterator[images_pb2.UploadImageRequest], context: Any) -> Any:
        self.called.append("upload")
        async for request in requests:
            self.uploaded.append(request)
        return images_pb2.Image(name="uploaded")

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(
                    self.unary, servers_pb2.GetServerRequest.FromString, servers_pb2.Server.SerializeToString
                ),
                "Download": grpc.unary_stream_rpc_method_handler(
                    self.download,
                    images_pb2.DownloadImageRequest.FromString,
                    images_pb2.DownloadImageResponse.SerializeToString,
                ),
                "Upload": grpc.stream_unary_rpc_method_handler(
                    self.upload, images_pb2.UploadImageRequest.FromString, images_pb2.Image.SerializeToString
                ),
            },
        )


@dataclass
class Authenticator:
    seen: list[Message | None] = field(default_factory=list)

    async def __call__(self, method: str, metadata: dict[str, str], request: Message | None) -> reqctx.RequestContext:
        if metadata.get("authorization") != "Bearer good":
            raise Unauthenticated("the bearer token is not valid", reason="BAD_TOKEN")
        self.seen.append(request)
        return reqctx.RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member"}))


@dataclass
class Served:
    address: str
    servicer: Servicer
    auth: Authenticator


async def _serve(auth: Authenticator | None) -> tuple[grpc.aio.Server, Served]:
    servicer, authenticator = Servicer(), auth or Authenticator()
    server = grpc.aio.server(interceptors=[aio_server_interceptor(), RequestInterceptor(auth)])
    server.add_generic_rpc_handlers([servicer.handler()])
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    reflection.enable_server_reflection([SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, Served(f"127.0.0.1:{port}", servicer, authenticator)


@pytest.fixture
async def api() -> AsyncIterator[Served]:
    """A port that authenticates bearer tokens (the api's)."""
    server, served = await _serve(Authenticator())
    yield served
    await server.stop(None)


@pytest.fixture
async def internal() -> AsyncIterator[Served]:
    """A port without an authenticator (an internal process's in these tests)."""
    server, served = await _serve(None)
    yield served
    await server.stop(None)


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Fails the test if anything logged above INFO."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    loud = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno > logging.INFO]
    assert not loud, loud


async def _garbage(channel: grpc.aio.Channel, kind: str, metadata: Any) -> grpc.aio.AioRpcError:
    """Sends GARBAGE as the request (of a request stream: its only message); the error it gets."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if kind == "Unary":
            await channel.unary_unary(f"/{SERVICE}/Unary")(GARBAGE, metadata=metadata, timeout=10)
        elif kind == "Download":
            async for _ in channel.unary_stream(f"/{SERVICE}/Download")(GARBAGE, metadata=metadata, timeout=10):
                pass
        else:
            await channel.stream_unary(f"/{SERVICE}/Upload")(iter([GARBAGE]), metadata=metadata, timeout=10)
    return caught.value


REQUEST_TYPES = {
    "Unary": "stratus.v1.GetServerRequest",
    "Download": "stratus.v1.DownloadImageRequest",
    "Upload": "stratus.v1.UploadImageRequest",
}


@pytest.mark.parametrize("kind", list(REQUEST_TYPES))
async def test_garbage_with_a_token_is_invalid_argument(api: Served, quiet: Any, kind: str) -> None:
    async with grpc.aio.insecure_channel(api.address) as channel:
        err = await _garbage(channel, kind, TOKEN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert err.details() == f"the request is not a valid {REQUEST_TYPES[kind]}"
    assert from_rpc_error(err).reason == "MALFORMED_REQUEST"
    assert api.servicer.called == (["upload"] if kind == "Upload" else [])  # an upload fails at the message
    assert any(r.levelno == logging.INFO and "not a valid" in r.getMessage() for r in quiet.records)


@pytest.mark.parametrize("metadata", [(), BAD_TOKEN], ids=["no token", "bad token"])
@pytest.mark.parametrize("kind", list(REQUEST_TYPES))
async def test_garbage_without_a_valid_token_is_unauthenticated(
    api: Served, quiet: Any, kind: str, metadata: Any
) -> None:
    async with grpc.aio.insecure_channel(api.address) as channel:
        err = await _garbage(channel, kind, metadata)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
    assert "not a valid" not in (err.details() or "")
    assert api.servicer.called == [] and api.auth.seen == []


async def test_authorization_sees_the_empty_request_of_the_method(api: Served, quiet: Any) -> None:
    async with grpc.aio.insecure_channel(api.address) as channel:
        await _garbage(channel, "Unary", TOKEN)
    assert api.auth.seen == [servers_pb2.GetServerRequest()]


async def test_an_upload_is_refused_at_its_first_bad_message(api: Served, quiet: Any) -> None:
    first = images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="disk")).SerializeToString()
    async with grpc.aio.insecure_channel(api.address) as channel:
        upload = channel.stream_unary(f"/{SERVICE}/Upload")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await upload(iter([first, GARBAGE, first]), metadata=TOKEN, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [m.metadata.name for m in api.servicer.uploaded] == ["disk"]  # type: ignore[attr-defined]
        assert images_pb2.Image.FromString(await upload(iter([first]), metadata=TOKEN, timeout=10)).name == "uploaded"


@pytest.mark.parametrize("kind", list(REQUEST_TYPES))
async def test_an_internal_port_answers_invalid_argument(internal: Served, quiet: Any, kind: str) -> None:
    async with grpc.aio.insecure_channel(internal.address) as channel:
        err = await _garbage(channel, kind, ())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err


async def test_health_and_reflection_answer_invalid_argument(api: Served, quiet: Any) -> None:
    async with grpc.aio.insecure_channel(api.address) as channel:
        for call in (
            channel.unary_unary("/grpc.health.v1.Health/Check")(GARBAGE, timeout=10),
            channel.unary_unary("/grpc.health.v1.Health/List")(GARBAGE, timeout=10),
            _drain(channel.unary_stream("/grpc.health.v1.Health/Watch")(GARBAGE, timeout=10)),
            _drain(channel.stream_stream(f"/{reflection.SERVICE_NAME}/ServerReflectionInfo")(iter([GARBAGE]))),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
        # and they still answer a valid request
        assert await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10) == b"\x08\x01"
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # not an ERROR in the log
            await channel.unary_unary("/grpc.health.v1.Health/List")(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def _drain(call: Any) -> None:
    async for _ in call:
        pass


async def test_a_client_dropping_a_stream_logs_nothing_above_debug(
    api: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = images_pb2.DownloadImageRequest(id="i").SerializeToString()
    traced = (*TOKEN, ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    async with grpc.aio.insecure_channel(api.address) as channel:
        call = channel.unary_stream(f"/{SERVICE}/Download")(request, metadata=traced, timeout=10)
        received = 0
        async for _ in call:
            received += 1
            if received == 3:
                call.cancel()
                break
        await asyncio.wait_for(api.servicer.stream_closed.wait(), 5)
    gc.collect()  # a generator left open would be closed now, from another task
    await asyncio.sleep(0.2)
    loud = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno > logging.DEBUG]
    assert not loud, loud
    # the handler's generator was closed in the call's own task, where its context was set
    started, closed = api.servicer.stream_tasks
    assert closed is started


# ---- a write the transport refuses: the client went away, gRPC's cancellation is on its way --------
class RefusingContext:
    """A servicer context whose transport refuses every message, as when the client just left."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def write(self, message: Any) -> None:
        raise grpc.aio.InternalError('Failed "execute_batch"')  # what gRPC's ExecuteBatchError is


async def _stream_handler(servicer: Servicer) -> Any:
    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return servicer.handler().service(details)

    @dataclass
    class Details:
        method: str = f"/{SERVICE}/Download"
        invocation_metadata: tuple[()] = ()

    return (await RequestInterceptor().intercept_service(continuation, Details())).unary_stream


async def _drive(handler: Any) -> None:
    async for _ in handler(images_pb2.DownloadImageRequest(id="i"), RefusingContext()):
        pass


async def test_a_refused_write_waits_for_the_cancellation(quiet: Any) -> None:
    servicer = Servicer()
    task = asyncio.create_task(_drive(await _stream_handler(servicer)))
    await asyncio.sleep(0.05)
    assert not task.done()  # not failed first: that would be logged as an ERROR by gRPC
    task.cancel()  # what gRPC does once it hears the client is gone
    with pytest.raises(asyncio.CancelledError):
        await task
    assert servicer.stream_closed.is_set() and servicer.stream_tasks == [task, task]


async def test_a_refused_write_fails_when_no_cancellation_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.core.interceptors.CLIENT_GONE_WAIT_S", 0.01)
    servicer = Servicer()
    with pytest.raises(grpc.aio.InternalError):
        await _drive(await _stream_handler(servicer))
    assert servicer.stream_closed.is_set()

"""An etcd outage is UNAVAILABLE with a RetryInfo, mapped in one place (the interceptor): for unary
calls, streams both ways and the authentication path; a bug is still INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from etcd3aio import EtcdConnectionError, EtcdTransientError
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status.rpc_status import GRPC_DETAILS_METADATA_KEY

from services.core import context as reqctx
from services.core.errors import (
    RETRY_AFTER_S,
    STATE_STORE_DOWN,
    DeadlineExceeded,
    Internal,
    NotFound,
    Unavailable,
    from_rpc_error,
    is_transient,
    state_store_down,
    to_status,
)
from services.core.interceptors import RequestInterceptor, as_status_error

OUTAGES = [EtcdConnectionError("down"), EtcdTransientError("slow"), TimeoutError(), ConnectionError("unsettled")]


def retry_delay_s(details: Any) -> float | None:
    for detail in details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    return None


def details_of(packed: grpc.Status) -> Any:
    proto = next(v for k, v in packed.trailing_metadata if k == GRPC_DETAILS_METADATA_KEY)
    return status_pb2.Status.FromString(proto).details


def test_the_state_store_being_down_is_unavailable_with_a_retry_hint() -> None:
    packed = to_status(state_store_down())
    assert packed.code == grpc.StatusCode.UNAVAILABLE
    assert packed.details == STATE_STORE_DOWN == "the state store is unreachable; retry"
    assert retry_delay_s(details_of(packed)) == RETRY_AFTER_S == 1.0


def test_an_unavailable_without_a_hint_carries_no_retry_info() -> None:
    assert retry_delay_s(details_of(to_status(Unavailable("no scheduler service is running")))) is None


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_each_etcd_outage_maps_to_unavailable(exc: Exception) -> None:
    err = as_status_error(exc)
    assert isinstance(err, Unavailable) and err.retry_after_s == RETRY_AFTER_S
    assert err.reason == "STATE_STORE_UNAVAILABLE" and err.message == STATE_STORE_DOWN


def test_domain_errors_pass_through_and_bugs_are_not_mapped() -> None:
    missing = NotFound("server", "x")
    assert as_status_error(missing) is missing
    assert as_status_error(ValueError("bug")) is None


def test_what_a_flow_waits_out() -> None:
    assert is_transient(Unavailable("x")) and is_transient(DeadlineExceeded("x"))
    assert not is_transient(NotFound("server", "x")) and not is_transient(Internal("x"))


# ---- over the wire: a real grpc.aio server with the interceptor ------------------------------------
def _identity(b: bytes) -> bytes:
    return b


class Raising:
    """Handlers that meet an outage: before answering, in the middle of a stream, in an upload."""

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise EtcdConnectionError("KV.Range failed after 3 attempts: UNAVAILABLE")

    async def bug(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise ValueError("a bug")

    async def download(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first chunk"
        raise TimeoutError()

    async def upload(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        async for _ in requests:
            raise EtcdTransientError("KV.Txn failed after 1 attempts: DEADLINE_EXCEEDED")
        return b""


def _handler(r: Raising) -> grpc.GenericRpcHandler:
    kw: dict[str, Any] = {"request_deserializer": _identity, "response_serializer": _identity}
    return grpc.method_handlers_generic_handler(
        "t.Outage",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(r.unary, **kw),
            "Bug": grpc.unary_unary_rpc_method_handler(r.bug, **kw),
            "Download": grpc.unary_stream_rpc_method_handler(r.download, **kw),
            "Upload": grpc.stream_unary_rpc_method_handler(r.upload, **kw),
        },
    )


async def _token_store_down(method: str, metadata: dict[str, str], request: Message | None) -> reqctx.RequestContext:
    if metadata.get("authorization") == "Bearer issued":
        raise EtcdConnectionError("KV.Range failed after 3 attempts: UNAVAILABLE")  # the token lookup
    return reqctx.SYSTEM


@pytest.fixture
async def server() -> AsyncIterator[str]:
    srv = grpc.aio.server(interceptors=[RequestInterceptor(_token_store_down)])
    srv.add_generic_rpc_handlers([_handler(Raising())])
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield f"127.0.0.1:{port}"
    await srv.stop(None)


def _check_unavailable(exc: grpc.aio.AioRpcError) -> None:
    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
    assert exc.details() == STATE_STORE_DOWN
    err = from_rpc_error(exc)
    assert isinstance(err, Unavailable) and err.retry_after_s == RETRY_AFTER_S
    assert err.reason == "STATE_STORE_UNAVAILABLE"


def _chunks() -> Iterator[bytes]:
    yield b"chunk"


async def test_every_kind_of_call_answers_unavailable_with_retry_info(server: str) -> None:
    async with grpc.aio.insecure_channel(server) as channel:
        ok_md = (("authorization", "Bearer file"),)
        unary = channel.unary_unary("/t.Outage/Unary", _identity, _identity)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary(b"", metadata=ok_md, timeout=10)
        _check_unavailable(caught.value)

        download = channel.unary_stream("/t.Outage/Download", _identity, _identity)
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for chunk in download(b"", metadata=ok_md, timeout=10):
                got.append(chunk)
        assert got == [b"first chunk"]
        _check_unavailable(caught.value)

        upload = channel.stream_unary("/t.Outage/Upload", _identity, _identity)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await upload(_chunks(), metadata=ok_md, timeout=10)
        _check_unavailable(caught.value)

        with pytest.raises(grpc.aio.AioRpcError) as caught:  # the token store is etcd too
            await unary(b"", metadata=(("authorization", "Bearer issued"),), timeout=10)
        _check_unavailable(caught.value)

        bug = channel.unary_unary("/t.Outage/Bug", _identity, _identity)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bug(b"", metadata=ok_md, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INTERNAL

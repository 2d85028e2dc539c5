"""The one server interceptor: authenticate, bind the request context, map errors to statuses.

Domain errors keep their code; an outage of the state store (etcd stopped, frozen or partitioned,
whichever call met it, the token lookup included) is UNAVAILABLE with a ``RetryInfo``, and so is
a write etcd refuses for lack of space (its NOSPACE alarm; reason STATE_STORE_FULL); a peer's
gRPC error keeps the peer's code; anything else is INTERNAL and logged with its traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from services.core import context as reqctx
from services.core.errors import (
    Internal,
    StratusError,
    from_rpc_error,
    state_store_down,
    state_store_full,
    to_status,
)
from services.core.etcd import OUTAGE, is_store_full

log = logging.getLogger(__name__)

# (full method name, invocation metadata, the request or None for a client stream) -> who is calling;
# raises Unauthenticated/PermissionDenied. None (the internal processes): every call runs as SYSTEM.
Authenticator = Callable[[str, dict[str, str], Message | None], Awaitable[reqctx.RequestContext]]

UNGUARDED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def as_status_error(exc: BaseException) -> StratusError | None:
    """The domain error ``exc`` stands for; None when it is a bug (the caller answers INTERNAL)."""
    if isinstance(exc, StratusError):
        return exc
    if is_store_full(exc):  # etcd's own RESOURCE_EXHAUSTED: not the caller's quota, a wait
        return state_store_full()
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_rpc_error(exc)
    if isinstance(exc, OUTAGE):
        return state_store_down()
    return None


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    err = as_status_error(exc)
    if err is not None:
        if not isinstance(exc, StratusError):
            log.warning("%s: %s (%s: %s)", method, err.message, type(exc).__name__, exc)
        await context.abort_with_status(to_status(err))
    log.exception("unexpected error in %s", method, exc_info=exc)
    await context.abort_with_status(to_status(Internal(f"internal error in {method}: {type(exc).__name__}")))


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticate: Authenticator | None = None) -> None:
        self._authenticate = authenticate

    async def _bind(self, method: str, context: grpc.aio.ServicerContext, request: Any) -> Any:
        if self._authenticate is None:
            return reqctx.bind(reqctx.SYSTEM)
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        message = request if isinstance(request, Message) else None
        return reqctx.bind(await self._authenticate(method, metadata, message))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNGUARDED_PREFIXES):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, behavior: Any, method: str) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                token = await self._bind(method, context, request)
            except Exception as exc:  # refused (a StratusError), or the token store is unreachable
                await _abort(context, exc, method)
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
            finally:
                reqctx.unbind(token)

        return wrapped

    def _streaming(self, behavior: Any, method: str) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                token = await self._bind(method, context, request)
            except Exception as exc:  # refused (a StratusError), or the token store is unreachable
                await _abort(context, exc, method)
            try:
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
            finally:
                reqctx.unbind(token)

        return wrapped

"""The one server interceptor: authenticate, bind the request context, map errors to statuses.

Domain errors keep their code; an outage of the state store (etcd stopped, frozen or partitioned,
whichever call met it, the token lookup included) is UNAVAILABLE with a ``RetryInfo``, and so is
a write etcd refuses for lack of space (its NOSPACE alarm; reason STATE_STORE_FULL); a peer's
gRPC error keeps the peer's code; anything else is INTERNAL and logged with its traceback.

Bytes that do not decode as the method's request are INVALID_ARGUMENT ("the request is not a valid
<type>"), logged at INFO, once the caller is authenticated: gRPC decodes a request before any
handler runs and would answer UNKNOWN and log an ERROR, so the deserializer answers ``Undecodable``
instead and the wrapped behavior refuses it after ``_bind`` (in a client stream, at that message).
A caller without a valid token learns nothing from garbage (UNAUTHENTICATED); authorization sees
the request type's empty message, which names no project, so garbage from an authenticated caller
is INVALID_ARGUMENT unless its role may not call the method at all (PERMISSION_DENIED).

A response stream is written here (``context.write``) rather than yielded to gRPC: gRPC never
closes a handler's generator when the client goes away (it cancels the call's task while the
generator waits at a ``yield``), so asyncio would close it later from another task, where every
``ContextVar.reset`` in it fails ("created in a different Context": OpenTelemetry's "Failed to
detach context" and our ``unbind``). Written here, a cancellation meets the call inside these
generators and unwinds them in the call's own task; the handler's generator is closed there too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from services.core import context as reqctx
from services.core.callers import CallerRoles
from services.core.errors import (
    Internal,
    InvalidArgument,
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
CLIENT_GONE_WAIT_S = 2.0  # how long a stream whose write failed waits for gRPC to cancel it


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


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a request's bytes deserialize to when they are not a valid ``type_name``."""

    type_name: str
    size: int
    empty: Message | None  # what authorization sees instead: the request type, naming nothing

    def error(self, method: str) -> InvalidArgument:
        log.info("%s: refused %d bytes that are not a valid %s", method, self.size, self.type_name)
        message = f"the request is not a valid {self.type_name}"
        return InvalidArgument([], message=message, reason="MALFORMED_REQUEST")


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserialize`` answering ``Undecodable`` where it would raise DecodeError."""
    if deserialize is None:
        return None
    owner = getattr(deserialize, "__self__", None)  # generated code passes <Request>.FromString
    request_type = owner if isinstance(owner, type) and issubclass(owner, Message) else None
    type_name = request_type.DESCRIPTOR.full_name if request_type else "request message"

    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError:
            return Undecodable(type_name, len(raw), request_type() if request_type else None)

    return decode


def _decoded(request: Any, method: str, streaming: bool) -> Any:
    """``request`` once it decoded; a request stream refusing each message that did not."""
    if isinstance(request, Undecodable):
        raise request.error(method)
    return _each_decoded(request, method) if streaming else request


async def _each_decoded(requests: AsyncIterator[Any], method: str) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Undecodable):
            raise request.error(method)
        yield request


def _is_async(behavior: Any) -> bool:
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The api's port authenticates bearer tokens (``authenticate``); an internal port checks the
    role of the caller's certificate (``callers``); with neither, every call runs as SYSTEM."""

    def __init__(self, authenticate: Authenticator | None = None, callers: CallerRoles | None = None) -> None:
        self._authenticate = authenticate
        self._callers = callers

    async def _bind(self, method: str, context: grpc.aio.ServicerContext, request: Any) -> Any:
        if self._authenticate is None:
            if self._callers is None:
                return reqctx.bind(reqctx.SYSTEM)
            return reqctx.bind(self._callers.check(method, context.auth_context()))
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        message = request if isinstance(request, Message) else None
        return reqctx.bind(await self._authenticate(method, metadata, message))

    async def _enter(self, method: str, context: grpc.aio.ServicerContext, request: Any, guarded: bool) -> Any:
        """Binds who is calling (None: an unguarded method binds nobody), or aborts the call."""
        if not guarded:
            return None
        try:
            return await self._bind(method, context, request.empty if isinstance(request, Undecodable) else request)
        except Exception as exc:  # refused (a StratusError), or the token store is unreachable
            await _abort(context, exc, method)
            raise  # not reached: _abort raises AbortError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None:
            return handler
        guarded = not method.startswith(UNGUARDED_PREFIXES)
        streaming = bool(handler.request_streaming)
        kinds = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler, self._unary),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler, self._unary),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler, self._streaming),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler, self._streaming),
        )
        for behavior, make_handler, wrap in kinds:
            if behavior is None:
                continue
            if not guarded and not _is_async(behavior):  # a generated stub: gRPC runs it in its thread pool
                return handler
            return make_handler(
                wrap(behavior, method, guarded, streaming),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, behavior: Any, method: str, guarded: bool, streaming: bool) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = await self._enter(method, context, request, guarded)
            try:
                return await behavior(_decoded(request, method, streaming), context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
            finally:
                if token is not None:
                    reqctx.unbind(token)

        return wrapped

    def _streaming(self, behavior: Any, method: str, guarded: bool, streaming: bool) -> Any:
        async def responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
            token = await self._enter(method, context, request, guarded)
            try:
                produced = behavior(_decoded(request, method, streaming), context)
                if not inspect.isasyncgen(produced):  # the reader/writer API (health's Watch) writes itself
                    await produced
                    return
                async with aclosing(produced):
                    async for item in produced:
                        yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
            finally:
                if token is not None:
                    reqctx.unbind(token)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # Writes what it is given and yields nothing (see the module's docstring); a failed
            # write (the client went away, the server stopping) is gRPC's to handle, not a bug.
            async with aclosing(responses(request, context)) as items:
                async for item in items:
                    try:
                        await context.write(item)
                    except grpc.aio.InternalError:  # the transport refused it: the client is gone
                        # gRPC learns so on another path and cancels this task; failing first would
                        # be logged as an ERROR ("ExecuteBatchError raised in core")
                        await asyncio.sleep(CLIENT_GONE_WAIT_S)
                        raise
            if False:  # an async generator, as gRPC and OpenTelemetry's interceptor expect
                yield

        return wrapped

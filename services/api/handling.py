"""What every gRPC handler of the api shares: ``bounded`` refuses a request out of bounds before the
handler runs. The handlers themselves sit with their family (``<family>/handlers.py``): unpack, call
the manager, return; errors map in the interceptor."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from services.api.validation import check_request

Ctx = Any
S = TypeVar("S")


async def _checked_stream(messages: AsyncIterator[Message]) -> AsyncIterator[Message]:
    async for message in messages:
        check_request(message)
        yield message


def _checked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with its request (or each message of a request stream) bounded first."""

    def checked(request: Any) -> Any:
        if isinstance(request, Message):
            check_request(request)
            return request
        return _checked_stream(request)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Ctx) -> AsyncIterator[Any]:
            async for item in method(self, checked(request), context):
                yield item

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Ctx) -> Any:
        return await method(self, checked(request), context)

    return unary


def bounded(cls: type[S]) -> type[S]:
    """Every public method of a stratus.v1 servicer refuses a request out of bounds
    (``validation.check_request``) before its handler runs."""
    for name, method in list(vars(cls).items()):
        if name[:1].isupper() and inspect.isfunction(method):
            setattr(cls, name, _checked(method))
    return cls

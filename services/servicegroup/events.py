"""Fan-out of membership events to watchers, one bounded queue per subscriber.

A subscriber that falls more than ``MAX_PENDING`` events behind is ended with UNAVAILABLE rather
than silently skipping events; it lists again and watches again.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from services.core.errors import Unavailable
from stratus.servicegroup.v1 import servicegroup_pb2

MAX_PENDING = 1000


class Subscription:
    """An async iterator of the events for one binary ("" for all) from its creation on."""

    def __init__(self, hub: MemberEvents, binary: str) -> None:
        self.binary = binary
        self._hub = hub
        self._queue: asyncio.Queue[servicegroup_pb2.MemberEvent] = asyncio.Queue(MAX_PENDING)
        self._overflowed = False
        self._closed = False

    def offer(self, event: servicegroup_pb2.MemberEvent) -> None:
        if self._closed or (self.binary and event.member.binary != self.binary):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._overflowed = True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> servicegroup_pb2.MemberEvent:
        if self._overflowed:
            raise Unavailable("membership watch fell too far behind; list the members and watch again")
        if self._closed:
            raise StopAsyncIteration
        return await self._queue.get()

    def close(self) -> None:
        self._closed = True
        self._hub.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MemberEvents:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, binary: str = "") -> Subscription:
        subscription = Subscription(self, binary)
        self._subscribers.add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: servicegroup_pb2.MemberEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    def __len__(self) -> int:
        return len(self._subscribers)

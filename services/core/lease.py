"""Liveness as a session object, after etcd's ``concurrency.Session``.

A ``LeaseSession`` grants a lease, keeps it alive over one persistent LeaseKeepAlive stream,
sets ``done`` when the lease is lost (expired, or unrenewed for a whole TTL), and revokes it on
``close`` so that the keys bound to it vanish at once. The clock and sleep are injectable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from etcd3aio._protobuf import LeaseKeepAliveRequest

from services.core.backoff import RECONNECT_S, backoff
from services.core.supervise import Policy, cancel, spawn_supervised

log = logging.getLogger(__name__)


class LeaseBackend(Protocol):
    async def grant(self, ttl_s: int) -> int: ...
    async def revoke(self, lease_id: int) -> None: ...
    def keepalive_stream(self, requests: AsyncIterator[Any]) -> Any: ...


class LeaseSession:
    def __init__(
        self,
        backend: LeaseBackend,
        ttl_s: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ttl_s < 2:
            raise ValueError("lease ttl must be at least 2 seconds")
        self._backend = backend
        self.ttl_s = ttl_s
        self._clock = clock
        self._sleep = sleep
        self.lease_id = 0
        self.done = asyncio.Event()
        self._last_renewed = 0.0
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> int:
        self.lease_id = await self._backend.grant(self.ttl_s)
        self._last_renewed = self._clock()
        # Until the lease is lost: a keepalive that fails unexpectedly runs again within a third of the TTL.
        restarts = Policy(first_s=0.1, cap_s=self.interval_s)
        self._task = spawn_supervised(
            "lease-keepalive", self._keepalive, until=self.done.is_set, policy=restarts, clock=self._clock,
            sleep=self._sleep,
        )  # fmt: skip
        return self.lease_id

    @property
    def interval_s(self) -> float:
        return self.ttl_s / 3

    def expired(self) -> bool:
        return self._clock() - self._last_renewed >= self.ttl_s

    async def _keepalive(self) -> None:
        delays = backoff(RECONNECT_S[0], self.interval_s)  # capped by the interval: a retry before the lease lapses
        while not self.done.is_set():
            try:
                await self._run_stream()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any stream failure: retry until the lease has lapsed
                log.warning("lease %x keepalive stream failed: %s", self.lease_id, exc)
            if self.expired():
                self._lose("not renewed for a whole TTL")
                return
            await self._sleep(next(delays))

    async def _run_stream(self) -> None:
        queue: asyncio.Queue[LeaseKeepAliveRequest] = asyncio.Queue()

        async def requests() -> AsyncIterator[LeaseKeepAliveRequest]:
            while True:
                yield await queue.get()

        stream = self._backend.keepalive_stream(requests())
        sender = asyncio.create_task(self._send_periodically(queue, stream))
        try:
            async for resp in stream:
                if resp.TTL <= 0:
                    self._lose("etcd says the lease has expired")
                    return
                self._last_renewed = self._clock()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            stream.cancel()

    async def _send_periodically(self, queue: asyncio.Queue[LeaseKeepAliveRequest], stream: Any) -> None:
        while True:
            queue.put_nowait(LeaseKeepAliveRequest(ID=self.lease_id))
            await self._sleep(self.interval_s * random.uniform(0.8, 1.0))
            if self.expired():
                self._lose("no keepalive answer for a whole TTL")
                stream.cancel()
                return

    def _lose(self, why: str) -> None:
        if not self.done.is_set():
            log.error("lease %x lost: %s", self.lease_id, why)
            self.done.set()

    async def close(self, revoke_timeout_s: float = 2.0) -> None:
        """Stops the keepalive and revokes the lease so its keys vanish now, not after the TTL."""
        await cancel(self._task)
        if self.lease_id and not self.done.is_set():
            try:
                await asyncio.wait_for(self._backend.revoke(self.lease_id), revoke_timeout_s)
            except Exception as exc:  # unreachable etcd: the lease lapses by itself
                log.warning("could not revoke lease %x (%s); it lapses in %ds", self.lease_id, exc, self.ttl_s)
        self.done.set()

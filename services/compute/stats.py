"""The host's stats (``hosts/<host>/stats``): what the scheduler's IoOps and BuildFailure
filters and weighers read, bound to the compute's lease and published again whenever a value
changes.

One publisher task writes at a time, always the latest values, so a burst of changes ends in the
last state and concurrent writes can never land out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import grpc

from services.core.backoff import RECONNECT_S, backoff
from services.core.etcd import AMBIGUOUS
from services.core.registration import Registration
from services.core.supervise import cancel, spawn_supervised
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)


class HostStatsTracker:
    def __init__(self, host: str) -> None:
        self.host = host
        self._io: set[str] = set()
        self._failed_builds = 0
        self._changed = asyncio.Event()
        self._registration: Registration | None = None
        self._task: asyncio.Task[None] | None = None

    def record(self) -> state_pb2.HostStats:
        return state_pb2.HostStats(io_ops=len(self._io), failed_builds=self._failed_builds)

    # ---- changes ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def io_op(self, instance_id: str) -> Iterator[None]:
        """Counts the instance in ``io_ops`` while the block runs (a spawn, later resize or migrate)."""
        self._io.add(instance_id)
        self._changed.set()
        try:
            yield
        finally:
            self._io.discard(instance_id)
            self._changed.set()

    def build_failed(self) -> None:
        self._failed_builds += 1
        self._changed.set()

    def build_succeeded(self) -> None:
        if self._failed_builds:
            self._failed_builds = 0
            self._changed.set()

    def publish_again(self) -> None:
        """Publishes the lease records though no stat changed: another of them did (the capabilities,
        when the hypervisor's health changes). Every publish writes them all."""
        self._changed.set()

    # ---- publishing ---------------------------------------------------------------------------
    def attach(self, registration: Registration) -> None:
        """Starts publishing through ``registration`` (the runner's ``on_registered``)."""
        self._registration = registration
        self._task = spawn_supervised("host-stats", self._publish)

    async def _publish(self) -> None:
        """Publishes once at (re)start, since a round that failed may have taken a change with it,
        then after every change."""
        assert self._registration is not None
        self._changed.set()
        delays = backoff(*RECONNECT_S)
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._registration.refresh()
                delays = backoff(*RECONNECT_S)
            except (grpc.aio.AioRpcError, ConnectionError, *AMBIGUOUS) as exc:
                log.warning("could not publish the stats of %s (%s); retrying", self.host, exc)
                self._changed.set()
                await asyncio.sleep(next(delays))

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None

"""Writes ``services_seen/<binary>/<host>`` records one at a time, in the order asked.

Cache listeners are synchronous and must not block, so they hand records here; one task writes
them in order (a service that comes and goes quickly ends with its last record) and retries
while etcd is unavailable.
"""

from __future__ import annotations

import asyncio
import logging

from services.core.backoff import RECONNECT_S, backoff
from services.core.etcd import Store, is_unavailable
from services.core.supervise import cancel, spawn_supervised
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)


class SeenWriter:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: asyncio.Queue[tuple[str, state_pb2.ServiceSeen]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = spawn_supervised("services-seen-writer", self._run)

    async def stop(self) -> None:
        await cancel(self._task)

    def write(self, key: str, seen: state_pb2.ServiceSeen) -> None:
        self._queue.put_nowait((key, seen))

    async def flush(self) -> None:
        """Waits until every record asked for so far is written (or given up)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            key, seen = await self._queue.get()
            try:
                await self._put(key, seen.SerializeToString())
            finally:
                self._queue.task_done()

    async def _put(self, key: str, value: bytes) -> None:
        delays = backoff(*RECONNECT_S)
        while True:
            try:
                await self._store.put(key, value)
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("could not write %s; dropped", key)
                    return
                delay = next(delays)
                log.warning("could not write %s (%s); retrying in %.1fs", key, exc, delay)
                await asyncio.sleep(delay)

"""Wakes whoever waits on an instance record when it changes: one etcd watch on ``instances/``
per api process, however many flows wait. A waiter re-reads the record when woken, so a missed
wake-up only delays it until its next poll (after a compaction every waiter is woken). Listeners
see every change (FlowOwners keeps its list of servers with work from them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from services.core import keys
from services.core.etcd import Store, is_store_outage
from services.core.supervise import cancel, spawn_supervised
from services.core.watch import WatchCompacted

log = logging.getLogger(__name__)


# Told of every record change (its id, its value or None when deleted, the change's revision);
# and, with id "", that changes may have been missed (a compaction or a lost watch).
Listener = Callable[[str, bytes | None, int], None]
MISSED = ""


class RecordEvents:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._revision = 0  # the last revision seen
        self._followed = False

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        _, self._revision = await self._store.get_with_revision(keys.DEPLOYMENT)
        self._task = spawn_supervised("watch:instances", self._follow)

    async def stop(self) -> None:
        await cancel(self._task)

    @contextlib.contextmanager
    def watching(self, instance_id: str) -> Iterator[asyncio.Event]:
        """An event set when the instance's record changes, while the block runs."""
        event = asyncio.Event()
        waiters = self._waiting.setdefault(instance_id, set())
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiting.pop(instance_id, None)

    def _wake(self, instance_id: str) -> None:
        for event in self._waiting.get(instance_id, ()):
            event.set()

    async def _follow(self) -> None:
        """Follows the records after ``_revision``. Run again after a failure (supervised), it goes
        on from now, as after a lost watch: every waiter is woken and every listener told."""
        if self._followed:
            await self._missed()
        self._followed = True
        while True:
            try:
                async for batch in self._store.watch_prefix(keys.INSTANCES, self._revision + 1):
                    for change in batch.events:
                        instance_id = change.key.removeprefix(keys.INSTANCES)
                        self._wake(instance_id)
                        for listener in self._listeners:
                            listener(instance_id, None if change.deleted else change.value, change.mod_revision)
                    self._revision = batch.revision
            except WatchCompacted as exc:
                log.warning("watch on instances: %s; waking every waiter", exc)
            except Exception as exc:
                if not is_store_outage(exc):
                    raise
                log.warning("watch on instances lost (%s); waking every waiter", exc)
                await asyncio.sleep(1.0)
            await self._missed()

    async def _missed(self) -> None:
        """After a gap in the changes: on from the current revision, every waiter woken, every
        listener told."""
        self._revision = await self._current_revision(self._revision)
        for instance_id in list(self._waiting):
            self._wake(instance_id)
        for listener in self._listeners:
            listener(MISSED, None, self._revision)

    async def _current_revision(self, last: int) -> int:
        try:
            _, revision = await self._store.get_with_revision(keys.DEPLOYMENT)
        except Exception as exc:
            if not is_store_outage(exc):
                raise
            return last
        return revision

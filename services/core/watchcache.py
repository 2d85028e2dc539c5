"""A cache of every key under a prefix, loaded page by page at one revision and fed by a watch from there.

Correct across etcd reconnects (the watch resumes from the next unseen revision) and across
compaction (it reloads). Subscribers get (key, old, new) for every change; None means absent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.core.backoff import RECONNECT_S, backoff
from services.core.etcd import Store, is_unavailable
from services.core.supervise import cancel, spawn_supervised
from services.core.watch import WatchCompacted

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    value: T
    mod_revision: int
    lease: int = 0


Listener = Callable[[str, "Entry[T] | None", "Entry[T] | None"], None]


class PrefixCache(Generic[T]):
    def __init__(
        self, store: Store, prefix: str, decode: Callable[[bytes], T], keep: Callable[[str], bool] | None = None
    ) -> None:
        """``keep``: which keys under the prefix to hold (default all); the others are passed over."""
        self._store = store
        self.prefix = prefix
        self._decode = decode
        self._keep = keep or (lambda _key: True)
        self.entries: dict[str, Entry[T]] = {}
        self.revision = 0
        self.ready = asyncio.Event()
        self._listeners: list[Listener[T]] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: Listener[T]) -> None:
        self._listeners.append(listener)

    def get(self, key: str) -> T | None:
        entry = self.entries.get(key)
        return entry.value if entry else None

    async def start(self) -> None:
        await self._load()
        self._task = spawn_supervised(f"watch:{self.prefix}", self._follow)

    async def stop(self) -> None:
        await cancel(self._task)

    def _set(self, key: str, new: Entry[T] | None) -> None:
        old = self.entries.get(key)
        if new is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = new
        for listener in self._listeners:
            listener(key, old, new)

    async def _load(self) -> None:
        fresh: dict[str, Entry[T]] = {}
        revision = 0
        async for page in self._store.scan(self.prefix):
            fresh.update((kv.key, Entry(self._decode(kv.value), kv.mod_revision, kv.lease))
                         for kv in page.kvs if self._keep(kv.key))  # fmt: skip
            revision = page.revision
        for key in [k for k in self.entries if k not in fresh]:
            self._set(key, None)
        for key, entry in fresh.items():
            if self.entries.get(key) != entry:
                self._set(key, entry)
        self.revision = revision
        self.ready.set()

    async def _follow(self) -> None:
        while True:
            try:
                async for batch in self._store.watch_prefix(self.prefix, self.revision + 1):
                    for ev in batch.events:
                        if not self._keep(ev.key):
                            continue
                        if ev.deleted:
                            self._set(ev.key, None)
                        else:
                            self._set(ev.key, Entry(self._decode(ev.value), ev.mod_revision, ev.lease))
                    self.revision = batch.revision
            except WatchCompacted as exc:
                log.warning("%s: %s; reloading", self.prefix, exc)
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("%s: etcd unavailable (%s); reloading", self.prefix, exc)
                else:  # a bad value or a bug: say so loudly, then rebuild from a fresh read
                    log.exception("%s: watch failed; reloading", self.prefix)
                    await asyncio.sleep(1.0)
            await self._reload()

    async def _reload(self) -> None:
        delays = backoff(*RECONNECT_S)
        while True:
            try:
                await self._load()
                return
            except Exception as exc:
                delay = next(delays)
                log.warning("%s: reload failed (%s); retrying in %.1fs", self.prefix, exc, delay,
                            exc_info=not is_unavailable(exc))  # fmt: skip
                await asyncio.sleep(delay)

"""Keeps a process's lease-bound keys in etcd: registers, re-registers after a lost lease, and
revokes on close so the keys vanish at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from services.core.etcd import Store, is_unavailable
from services.core.lease import LeaseSession

log = logging.getLogger(__name__)


class DuplicateService(RuntimeError):
    pass


class Registration:
    def __init__(self, store: Store, ttl_s: int, records: Callable[[], dict[str, bytes]], owner_key: str) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._records = records
        self._owner_key = owner_key
        self.session: LeaseSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._wait_for_previous_owner()
        await self._register()
        self._task = asyncio.create_task(self._keep(), name="registration")

    async def _wait_for_previous_owner(self) -> None:
        """Another process holds this binary/host: wait for its lease to lapse, then refuse."""
        deadline = asyncio.get_running_loop().time() + 2 * self._ttl_s + 1
        while (await self._store.get(self._owner_key)) is not None:
            if asyncio.get_running_loop().time() > deadline:
                raise DuplicateService(f"{self._owner_key} is held by another live process; pick another --host")
            log.warning("%s is still registered (a previous run?); waiting for its lease to lapse", self._owner_key)
            await asyncio.sleep(0.5)

    async def _register(self) -> None:
        session = LeaseSession(self._store, self._ttl_s)
        lease = await session.open()
        ops = [self._store.op_put(key, value, lease) for key, value in self._records().items()]
        await self._store.txn([], ops)
        self.session = session

    async def refresh(self) -> None:
        """Re-puts the records (e.g. capabilities changed) on the current lease."""
        if self.session is not None:
            ops = [self._store.op_put(k, v, self.session.lease_id) for k, v in self._records().items()]
            await self._store.txn([], ops)

    async def _keep(self) -> None:
        while True:
            assert self.session is not None
            await self.session.done.wait()
            log.error("registration lost; registering again")
            delay = 0.2
            while True:
                try:
                    await self._register()
                    log.info("registered again with lease %x", self.session.lease_id)
                    break
                except Exception as exc:
                    if not is_unavailable(exc) and not isinstance(exc, ConnectionError):
                        raise
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 3.0)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.session:
            await self.session.close()

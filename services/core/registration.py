"""Keeps a process's lease-bound keys in etcd: registers, re-registers after a lost lease, and
revokes on close so the keys vanish at once.

Taking the name is one transaction: the owner key (``services/<binary>/<host>``) is put only if it
is absent, together with the other records, so two processes started with one host name cannot
both register. A key left by a previous run of this host is waited out (its lease lapses within a
TTL); a key another live process created meanwhile refuses this one at once, with a message that
names the host. A re-registration after a lost lease goes through the same check, so it never takes
a name another process took meanwhile: it stops the process instead (``on_conflict``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc

from services.core.backoff import RECONNECT_S, backoff
from services.core.etcd import AMBIGUOUS, Store, is_lease_gone, is_unavailable
from services.core.lease import LeaseSession
from services.core.supervise import cancel, spawn_supervised

log = logging.getLogger(__name__)
POLL_S = 0.5
START_ATTEMPTS = 10  # each a new lease: the ones an etcd freeze let expire before the write


class DuplicateService(RuntimeError):
    pass


class Registration:
    def __init__(
        self,
        store: Store,
        ttl_s: int,
        records: Callable[[], dict[str, bytes]],
        owner_key: str,
        on_conflict: Callable[[], None] | None = None,
    ) -> None:
        """``on_conflict``: called when, after a lost lease, another process holds the name (the
        process should stop)."""
        self._store = store
        self._ttl_s = ttl_s
        self._records = records
        self._owner_key = owner_key
        self._on_conflict = on_conflict
        self.session: LeaseSession | None = None
        self.conflict: str | None = None  # why the name was lost to another process, if it was
        self._task: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        return self._owner_key.rstrip("/").rsplit("/", 1)[-1]

    def _refusal(self) -> str:
        return (f"host name {self.host!r} is taken: {self._owner_key} is registered by another live process; "
                "pick another --host")  # fmt: skip

    async def start(self) -> None:
        for attempt in range(START_ATTEMPTS):
            try:
                await self._claim_name()
                break
            except grpc.aio.AioRpcError as exc:  # etcd outlived the lease (a long freeze): a new one
                if not is_lease_gone(exc) or attempt == START_ATTEMPTS - 1:
                    raise
                log.warning("registering %s: the lease expired before the write (%s); again", self.host,
                            exc.details())  # fmt: skip
                await asyncio.sleep(POLL_S)
        # Until the name is lost to another process (the process stops then): a failure re-registers.
        self._task = spawn_supervised("registration", self._keep, until=lambda: self.conflict is not None)

    async def _claim_name(self) -> None:
        """Takes the name in one transaction, after waiting out a previous run's lease; refuses
        (DuplicateService) when a live process holds it."""
        _, since = await self._store.get_with_revision(self._owner_key)
        deadline = asyncio.get_running_loop().time() + 2 * self._ttl_s + 1
        session = LeaseSession(self._store, self._ttl_s)
        await session.open()
        try:
            while True:
                holder = await self._put_if_absent(session.lease_id)
                if holder is None:
                    self.session = session
                    return
                created_since = int(holder.create_revision) > since
                if created_since or asyncio.get_running_loop().time() > deadline:
                    raise DuplicateService(self._refusal())
                log.warning("%s is still registered (a previous run?); waiting for its lease to lapse", self._owner_key)
                await asyncio.sleep(POLL_S)
        except BaseException:
            await session.close()
            raise

    async def _put_if_absent(self, lease: int) -> Any:
        """Puts the records on ``lease`` if the owner key is absent: None if they are in, else the
        owner key's current holder (an etcd KeyValue)."""
        ops = [self._store.op_put(key, value, lease) for key, value in self._records().items()]
        for _ in range(3):
            try:
                ok, resp = await self._store.txn(
                    [self._store.cmp_absent(self._owner_key)], ops, [self._store.op_get(self._owner_key)]
                )
            except AMBIGUOUS as exc:  # did it land? the owner key says, by its lease
                log.warning("registration outcome unknown (%s), reading back", exc)
                current = await self._store.get(self._owner_key)
                if current is None:
                    continue
                return None if current.lease == lease else current
            if ok:
                return None
            kvs = resp.responses[0].response_range.kvs
            if kvs:
                return kvs[0]
        raise ConnectionError(f"etcd did not settle the registration of {self._owner_key}")

    async def _register_again(self, lost: LeaseSession) -> bool:
        """After a lost lease: the records on a new lease, if the name is still free (or held only
        by the lost lease, which etcd may not have expired yet). False if another process has it."""
        session = LeaseSession(self._store, self._ttl_s)
        await session.open()
        try:
            for _ in range(3):
                holder = await self._put_if_absent(session.lease_id)
                if holder is None:
                    self.session = session
                    return True
                if int(holder.lease) != lost.lease_id:
                    await session.close()
                    return False
                with contextlib.suppress(Exception):  # ours, but lost: let it go and take the name again
                    await self._store.revoke(lost.lease_id)
            raise ConnectionError(f"could not take {self._owner_key} back from its lost lease")
        except BaseException:
            if self.session is not session:
                await session.close()
            raise

    async def refresh(self) -> None:
        """Re-puts the records (e.g. capabilities changed) on the current lease."""
        if self.session is not None:
            ops = [self._store.op_put(k, v, self.session.lease_id) for k, v in self._records().items()]
            await self._store.txn([], ops)

    async def _keep(self) -> None:
        while True:
            lost = self.session
            assert lost is not None
            await lost.done.wait()
            log.error("registration lost; registering again")
            delays = backoff(*RECONNECT_S)
            while True:
                try:
                    if not await self._register_again(lost):
                        self.conflict = self._refusal()
                        log.error("%s: stopping", self.conflict)
                        if self._on_conflict is not None:
                            self._on_conflict()
                        return
                    log.info("registered again with lease %x", self.session.lease_id if self.session else 0)
                    break
                except Exception as exc:
                    if not (is_unavailable(exc) or is_lease_gone(exc) or isinstance(exc, ConnectionError)):
                        raise
                    await asyncio.sleep(next(delays))

    async def close(self) -> None:
        await cancel(self._task)
        if self.session:
            await self.session.close()

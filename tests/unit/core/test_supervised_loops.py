"""The core's background loops come back after an unexpected failure: a lease's keepalive, a
registration's re-registration, a prefix cache's watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from services.core.etcd import Store
from services.core.lease import LeaseSession
from services.core.registration import Registration
from services.core.watch import WatchBatch, WatchCompacted
from services.core.watchcache import PrefixCache
from tests.support.supervision import FailOnce, FailOnceSync, Restarts, eventually, fast_restarts

OWNER = "services/compute/compute-9"


class Stream:
    """A keepalive stream: the first one breaks at once, the next ones answer every request."""

    def __init__(self, requests: AsyncIterator[Any], broken: bool) -> None:
        self._requests, self._broken = requests, broken

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._answers()

    async def _answers(self) -> AsyncIterator[Any]:
        if self._broken:
            raise ConnectionError("the stream broke")
        async for _ in self._requests:
            yield SimpleNamespace(TTL=3)

    def cancel(self) -> None:
        return None


class Backend:
    def __init__(self) -> None:
        self.streams = 0

    async def grant(self, ttl_s: int) -> int:
        return 0x42

    async def revoke(self, lease_id: int) -> None:
        return None

    def keepalive_stream(self, requests: AsyncIterator[Any]) -> Stream:
        self.streams += 1
        return Stream(requests, broken=self.streams == 1)


async def test_a_lease_keepalive_that_fails_unexpectedly_keeps_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Backend()
    session = LeaseSession(backend, 3)
    expired = FailOnceSync(session.expired)  # checked after the broken stream: raises, which nothing expects
    monkeypatch.setattr(session, "expired", expired)
    restarts = Restarts("lease-keepalive")
    await session.open()
    await restarts.wait()
    await eventually(lambda: backend.streams >= 2)
    renewed = session._last_renewed
    await eventually(lambda: session._last_renewed > renewed)
    assert not session.done.is_set() and restarts.count == 1
    await session.close()


async def test_a_registration_whose_renewal_fails_unexpectedly_registers_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    mine = Registration(store, 2, lambda: {OWNER: b"mine"}, OWNER)
    await mine.start()
    assert mine.session is not None
    lost = mine.session.lease_id
    again = FailOnce(mine._register_again)
    monkeypatch.setattr(mine, "_register_again", again)
    restarts = Restarts("registration")
    try:
        await store.revoke(lost)
        await restarts.wait(timeout_s=10.0)
        async with asyncio.timeout(10.0):
            while True:
                owner = await store.get(OWNER)
                if owner is not None and owner.lease not in (0, lost):
                    break
                await asyncio.sleep(0.05)
        assert again.calls == 2 and mine.conflict is None
    finally:
        await mine.close()


async def test_a_prefix_cache_whose_reload_fails_unexpectedly_follows_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    cache: PrefixCache[bytes] = PrefixCache(store, "things/", bytes)
    real_watch = store.watch_prefix
    watches = 0

    def watch(prefix: str, start_revision: int, **kwargs: Any) -> AsyncIterator[WatchBatch]:
        nonlocal watches
        watches += 1
        if watches == 1:
            raise WatchCompacted(0)  # the first watch: its reload is the step that fails
        return real_watch(prefix, start_revision, **kwargs)

    monkeypatch.setattr(store, "watch_prefix", watch)
    reload = FailOnce(cache._reload)
    monkeypatch.setattr(cache, "_reload", reload)
    restarts = Restarts("watch:things/")
    await cache.start()
    try:
        await restarts.wait()
        await store.put("things/a", b"1")
        await eventually(lambda: cache.get("things/a") == b"1")
        assert reload.calls == 1 and watches == 2
    finally:
        await cache.stop()

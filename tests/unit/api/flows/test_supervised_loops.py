"""The api's flow loops come back after an unexpected failure: the takeover scan, and the record
watch (which, run again, wakes every waiter and tells its listeners that changes were missed)."""

from __future__ import annotations

import asyncio

import pytest

from services.api.flows.owners import FlowOwners
from services.api.flows.record_events import MISSED, RecordEvents
from services.api.flows.tasks import InstanceTasks
from services.core import keys
from services.core.etcd import Store
from tests.support.supervision import FailOnce, FailOnceSync, Restarts, eventually, fast_restarts


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_restarts(monkeypatch)


async def test_a_takeover_scan_that_fails_unexpectedly_runs_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = FlowOwners(store, InstanceTasks(), "api-1", lease_ttl_s=2, scan_interval_s=0.01)
    scans: list[int] = []

    async def scan() -> int:
        scans.append(len(scans))
        return 0

    monkeypatch.setattr(owners, "scan", scan)
    await owners.start()  # its first scan runs here; the loop's scans from now on
    failing = FailOnce(scan)
    monkeypatch.setattr(owners, "scan", failing)
    restarts = Restarts("flow-owners")
    try:
        await restarts.wait()
        await eventually(lambda: len(scans) >= 3)
        assert failing.calls >= 3
    finally:
        await owners.stop(0)


async def test_a_record_watch_that_fails_unexpectedly_follows_again(store: Store) -> None:
    events = RecordEvents(store)
    seen: list[tuple[str, bytes | None]] = []
    listener = FailOnceSync(lambda instance_id, value, revision: seen.append((instance_id, value)))
    events.listen(listener)
    restarts = Restarts("watch:instances")
    await events.start()
    try:
        with events.watching("waiting") as woken:
            await store.put(keys.instance("a"), b"1")  # its listener fails
            await restarts.wait()
            await asyncio.wait_for(woken.wait(), 5)  # woken by the restart: changes may have been missed
        assert seen[0] == (MISSED, None)
        await store.put(keys.instance("b"), b"2")
        await eventually(lambda: ("b", b"2") in seen)
    finally:
        await events.stop()

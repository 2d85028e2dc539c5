"""The compute's background loops come back after an unexpected failure: the reconcile pass, and
the host stats publisher (which publishes the change the failed round was carrying)."""

from __future__ import annotations

from typing import cast

import pytest

from services.compute.drivers.base import VirtDriver
from services.compute.locks import KeyedLocks
from services.compute.reconcile import Reconciler
from services.compute.settings import ComputeSettings
from services.compute.stats import HostStatsTracker
from services.core.etcd import Store
from services.core.registration import Registration
from stratus.state.v1 import state_pb2
from tests.support.supervision import FailOnce, Restarts, eventually, fast_restarts

HOST = "compute-test"


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_restarts(monkeypatch)


async def test_a_reconcile_pass_that_fails_unexpectedly_runs_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ComputeSettings(host=HOST, reconcile_interval_s=0.01)
    reconciler = Reconciler(settings, store, cast(VirtDriver, object()), KeyedLocks())  # the pass is a stand-in
    passes: list[float | None] = []

    async def one_pass(now: float | None = None) -> None:
        passes.append(now)

    reconcile = FailOnce(one_pass)
    monkeypatch.setattr(reconciler, "reconcile", reconcile)
    restarts = Restarts("reconcile")
    reconciler.start()
    try:
        await eventually(lambda: len(passes) >= 2)
        assert restarts.count == 1 and reconcile.calls >= 3
    finally:
        await reconciler.stop()


class Publisher:
    """Stands in for the runner's Registration: remembers what each refresh published."""

    def __init__(self, tracker: HostStatsTracker) -> None:
        self.tracker = tracker
        self.published: list[state_pb2.HostStats] = []

    async def refresh(self) -> None:
        self.published.append(self.tracker.record())


async def test_a_stats_publication_that_fails_unexpectedly_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = HostStatsTracker(HOST)
    publisher = Publisher(tracker)
    tracker.attach(cast(Registration, publisher))
    try:
        await eventually(lambda: len(publisher.published) == 1)  # once at start
        monkeypatch.setattr(publisher, "refresh", FailOnce(publisher.refresh))
        restarts = Restarts("host-stats")
        tracker.build_failed()  # the round that publishes it fails
        await restarts.wait()
        await eventually(lambda: publisher.published[-1].failed_builds == 1)
    finally:
        await tracker.close()

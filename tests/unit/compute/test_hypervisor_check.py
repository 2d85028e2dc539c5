"""A hung hypervisor is noticed by the compute: its capabilities say degraded, with the reason, and are
published again; once the hypervisor answers they are clear again. The fake driver's hang file hangs it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from services.compute.drivers.fake.driver import FakeDriver
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.core import keys
from services.core.etcd import Store
from services.core.registration import Registration
from stratus.state.v1 import state_pb2
from tests.unit.compute.test_manager import HOST, SIZE


class Published:
    """Stands in for the runner's Registration: the capabilities each refresh published."""

    def __init__(self, manager: ComputeManager) -> None:
        self.manager = manager
        self.reasons: list[str] = []

    async def refresh(self) -> None:
        self.reasons.append(capabilities(self.manager).degraded_reason)


def capabilities(manager: ComputeManager) -> state_pb2.HostCapabilities:
    return state_pb2.HostCapabilities.FromString(manager.lease_records()[keys.host_capabilities(HOST)])


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_hung_hypervisor_degrades_the_capabilities_until_it_answers(store: Store, tmp_path: Path) -> None:
    hang = tmp_path / "hang"
    settings = ComputeSettings(host=HOST, hypervisor_call_timeout_s=0.2, hypervisor_check_interval_s=0.05)
    driver = FakeDriver(SIZE, hang_file=hang, call_timeout_s=0.2, host=HOST)
    manager = ComputeManager(settings, store, driver)
    await manager.start()
    published = Published(manager)
    manager.stats.attach(cast(Registration, published))
    try:
        assert capabilities(manager).degraded_reason == ""
        hang.touch()  # nothing else runs: the periodic check notices
        await until(lambda: capabilities(manager).degraded_reason != "")
        reason = capabilities(manager).degraded_reason
        # the periodic check's call, or the reconcile pass's if it came first
        assert re.fullmatch(f"fake hypervisor of {HOST} did not answer '[a-z ]+' within 0.2 s", reason), reason
        await until(lambda: reason in published.reasons)
        hang.unlink()
        await until(lambda: capabilities(manager).degraded_reason == "")
        await until(lambda: published.reasons[-1] == "")
    finally:
        hang.unlink(missing_ok=True)
        await manager.stop()


async def test_a_compute_that_starts_healthy_reports_no_degradation(store: Store) -> None:
    settings = ComputeSettings(host=HOST)
    manager = ComputeManager(settings, store, FakeDriver(SIZE))
    await manager.start()
    try:
        assert capabilities(manager).degraded_reason == ""
        assert manager.hypervisor_check.interval_s == settings.hypervisor_check_interval_s
    finally:
        await manager.stop()

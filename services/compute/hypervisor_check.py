"""Keeps the host's ``degraded_reason`` current: follows the driver's ``health`` (every hypervisor call
has a timeout; one that times out degrades it, and one answered in time clears it) and asks the
hypervisor a cheap question every ``hypervisor_check_interval_s`` (``VirtDriver.check``), so that a
hang, and its end, are noticed on a host with nothing else to do. Each change goes to ``on_change``
(the manager puts it in the capabilities record and publishes it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.compute.drivers.base import DriverError, VirtDriver
from services.core.supervise import cancel, spawn_supervised

log = logging.getLogger(__name__)


class HypervisorCheck:
    def __init__(self, host: str, driver: VirtDriver, interval_s: float, on_change: Callable[[str], None]) -> None:
        self.host = host
        self.driver = driver
        self.interval_s = interval_s
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        driver.health.listen(self._changed)

    @property
    def reason(self) -> str:
        """Why the hypervisor is degraded; "" while it answers."""
        return self.driver.health.reason

    def start(self) -> None:
        self._task = spawn_supervised("hypervisor-check", self._run)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.driver.check()
            except DriverError as exc:  # the health says so already (a timeout), or it is no hang
                log.debug("hypervisor check on %s: %s", self.host, exc)
            await asyncio.sleep(self.interval_s)

    def _changed(self, reason: str) -> None:
        if reason:
            log.warning("compute %s is degraded: %s; no server is placed here until it answers", self.host, reason)
        else:
            log.warning("compute %s: the hypervisor answers again; no longer degraded", self.host)
        self._on_change(reason)

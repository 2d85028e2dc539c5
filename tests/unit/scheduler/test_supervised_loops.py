"""The scheduler's options watcher comes back after an unexpected failure of a check."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.scheduler.options import OptionsWatcher
from tests.support.supervision import FailOnceSync, Restarts, eventually, fast_restarts
from tests.unit.scheduler.test_options import base, ram, write


async def test_an_options_check_that_fails_unexpectedly_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    path = tmp_path / "scheduler.json"
    write(path, {"ram_allocation_ratio": 1.0})
    watcher = OptionsWatcher(base(), path, interval_s=0.01)
    check = FailOnceSync(watcher.check)
    monkeypatch.setattr(watcher, "check", check)
    restarts = Restarts("scheduler-options")
    await watcher.start()
    try:
        await restarts.wait()
        write(path, {"ram_allocation_ratio": 3.0})
        await eventually(lambda: ram(watcher.config)[0] == 3.0)
        assert check.calls >= 2
    finally:
        await watcher.stop()

"""The image sweeper's loop comes back after an unexpected failure of a sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.core.etcd import Store
from tests.support.supervision import FailOnce, Restarts, eventually, fast_restarts


async def test_a_sweep_that_fails_unexpectedly_runs_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    images = ImagesManager(store, ImageFiles(tmp_path / "images"))
    sweeps: list[int] = []

    async def sweep(spread_s: float = 0.0) -> int:
        sweeps.append(0)
        return 0

    failing = FailOnce(sweep)
    monkeypatch.setattr(images, "sweep", failing)
    restarts = Restarts("image-sweeper")
    images.start_sweeping(0.01)
    try:
        await restarts.wait()
        await eventually(lambda: len(sweeps) >= 2)
        assert failing.calls >= 3
    finally:
        await images.stop_sweeping()

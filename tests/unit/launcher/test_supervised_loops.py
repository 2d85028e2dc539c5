"""The launcher's loops (restarting the children, following their registrations) come back after
an unexpected failure instead of stopping the stack, and end with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

from services.core.etcd import Store
from services.launcher import stack as stack_module
from services.launcher.options import StackOptions
from services.launcher.stack import Stack
from services.launcher.supervised import Supervised
from tests.support.supervision import FailOnce, Restarts, eventually, fast_restarts


async def test_a_launcher_loop_that_fails_unexpectedly_runs_again_until_the_stack_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    runs: list[str] = []

    async def keep_running(procs: Sequence[Supervised], stop: asyncio.Event, release: object = None) -> None:
        runs.append("keep-running")
        await stop.wait()

    async def follow_registrations(
        store: Store, services: Sequence[Supervised], changed: Callable[[], None], stop: asyncio.Event
    ) -> None:
        runs.append("registrations")
        await stop.wait()

    monkeypatch.setattr(stack_module, "keep_running", FailOnce(keep_running))
    monkeypatch.setattr(stack_module, "follow_registrations", FailOnce(follow_registrations))
    stack = Stack(StackOptions(state_dir=tmp_path))
    stack.store = cast(Store, object())  # the loops that would read it are stand-ins
    restarts = Restarts("keep-running"), Restarts("registrations")
    supervising = asyncio.create_task(stack._supervise())
    for loop in restarts:
        await loop.wait()
    await eventually(lambda: len(runs) == 2)
    assert not supervising.done()
    stack.stop.set()
    await asyncio.wait_for(supervising, 5)  # ends with the stack, raising nothing
    assert sorted(runs) == ["keep-running", "registrations"]

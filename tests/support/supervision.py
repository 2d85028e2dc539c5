"""Supervised loops in tests: restarts without the production delays, a step that fails once, and a
wait until a loop has been restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, ParamSpec, TypeVar

import pytest

from services.core import supervise

P = ParamSpec("P")
R = TypeVar("R")
FAST = supervise.Policy(first_s=0.01, cap_s=0.05, healthy_s=60.0)


class Injected(RuntimeError):
    """The failure a test injects: nothing in the services expects it."""


def fast_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "DEFAULT", FAST)


class FailOnce(Generic[P, R]):
    """Stands in for an async step: the first call raises ``Injected``, the next ones run the step."""

    def __init__(self, step: Callable[P, Awaitable[R]]) -> None:
        self.step = step
        self.calls = 0

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        self.calls += 1
        if self.calls == 1:
            raise Injected("injected failure")
        return await self.step(*args, **kwargs)


class FailOnceSync(Generic[P, R]):
    """As FailOnce, for a plain function (a listener, a callback)."""

    def __init__(self, step: Callable[P, R]) -> None:
        self.step = step
        self.calls = 0

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        self.calls += 1
        if self.calls == 1:
            raise Injected("injected failure")
        return self.step(*args, **kwargs)


class Restarts:
    """Counts the restarts of one loop from now on (``services.core.supervise.restarts``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._before = supervise.restarts[name]

    @property
    def count(self) -> int:
        return supervise.restarts[self.name] - self._before

    async def wait(self, at_least: int = 1, timeout_s: float = 5.0) -> None:
        await eventually(lambda: self.count >= at_least, timeout_s)


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls ``check`` until it is true (a loop's progress has no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)

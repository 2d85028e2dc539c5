"""Blocking hypervisor calls with a deadline, off the event loop (``TimedCalls``).

Each call runs on a daemon thread of its own and its caller waits at most ``timeout_s`` for it,
waiting for a free thread included; then the caller gets ``CallTimeout`` and the loop goes on.
Python cannot stop a thread, so a call that timed out keeps its thread until the hypervisor
answers it (a *stuck* call). At most ``max_threads`` threads run at once, so stuck calls cannot
pile up: while every thread holds one, further calls are refused at once instead of queueing
behind them. The threads are daemons, so a stuck call never holds up the process's exit.

A timeout makes ``health`` degraded, naming the call (the first one, until the hang ends); the first
call answered in time (a result or an error: either way the hypervisor answered) once no call is
stuck any more clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.compute.drivers.base import DriverError
from services.compute.drivers.health import HypervisorHealth

log = logging.getLogger(__name__)
R = TypeVar("R")


class CallTimeout(DriverError):
    """The hypervisor did not answer a call in time (or too many calls are still unanswered)."""


@dataclass(slots=True)
class _Outcome(Generic[R]):
    """What the call's thread brings back: its value or its error."""

    value: R | None = None
    error: BaseException | None = None

    def unwrap(self) -> R:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # None only when R admits it


@dataclass(slots=True, eq=False)
class _Call:
    what: str
    started: float  # loop time
    future: asyncio.Future[_Outcome[Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    running: bool = False  # its thread started (and holds a slot until it returns)
    stuck: bool = False  # timed out with its thread still running


class TimedCalls:
    def __init__(self, name: str, timeout_s: float, max_threads: int, health: HypervisorHealth | None = None) -> None:
        """``name`` says whose calls these are in messages ("libvirt at qemu:///system")."""
        if timeout_s <= 0 or max_threads < 1:
            raise ValueError("TimedCalls needs timeout_s > 0 and max_threads >= 1")
        self.name = name
        self.timeout_s = timeout_s
        self.max_threads = max_threads
        self.health = health if health is not None else HypervisorHealth()
        self._slots = asyncio.Semaphore(max_threads)
        self._stuck: set[_Call] = set()

    @property
    def stuck(self) -> int:
        """Calls that timed out and whose threads still wait for the hypervisor."""
        return len(self._stuck)

    async def run(self, what: str, fn: Callable[..., R], *args: Any, timeout_s: float | None = None) -> R:
        """``fn(*args)`` on a thread of its own; its value, or its error as raised. ``what`` names
        the call in messages ("reading the domain state"); ``timeout_s`` overrides the default for
        calls known to be long. CallTimeout when no answer comes in time."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        self._refuse_when_jammed(what)
        call = _Call(what, asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(limit):
                await self._slots.acquire()
                self._start(call, fn, args)
                await asyncio.shield(call.future)  # the timeout cancels the wait, not the call's future
        except TimeoutError:
            if not call.future.done():  # (done: it answered at the very deadline, and that stands)
                raise self._timed_out(call, limit) from None
        finally:
            if not call.future.done():
                call.future.cancel()  # timed out or cancelled: a late answer is dropped
        if not self._stuck:
            self.health.recover()
        outcome: _Outcome[R] = call.future.result()
        return outcome.unwrap()

    def _refuse_when_jammed(self, what: str) -> None:
        if len(self._stuck) < self.max_threads:
            return
        oldest = min(self._stuck, key=lambda c: c.started)
        waited = asyncio.get_running_loop().time() - oldest.started
        raise CallTimeout(f"{self.name} has not answered {len(self._stuck)} calls (the oldest, {oldest.what!r}, "
                          f"for {waited:.0f} s); not trying {what!r}")  # fmt: skip

    def _start(self, call: _Call, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Runs the call on a new daemon thread, holding one slot (acquired) until it returns."""
        loop = asyncio.get_running_loop()
        job = functools.partial(fn, *args)
        thread = threading.Thread(target=self._work, args=(loop, call, job), name="hypervisor-call", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # the system has no thread left to give
            self._slots.release()
            raise DriverError(f"{call.what}: cannot start a thread for the call: {exc}") from exc
        call.running = True

    def _work(self, loop: asyncio.AbstractEventLoop, call: _Call, job: Callable[[], Any]) -> None:
        """The call's thread: runs ``job`` and hands what it brought back to the loop."""
        outcome: _Outcome[Any] = _Outcome(error=DriverError(f"{call.what}: the call ended abnormally"))
        try:
            outcome = _Outcome(value=job())
        except Exception as exc:  # the caller's error to see: raised on the loop by unwrap()
            outcome = _Outcome(error=exc)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
                loop.call_soon_threadsafe(self._finished, call, outcome)

    def _finished(self, call: _Call, outcome: _Outcome[Any]) -> None:
        """On the loop, when the call's thread returns (in time or late)."""
        self._slots.release()
        if call.stuck:
            self._stuck.discard(call)
            waited = asyncio.get_running_loop().time() - call.started
            log.warning("%s answered %r after %.1f s; %d call(s) still unanswered", self.name, call.what, waited,
                        len(self._stuck))  # fmt: skip
        if not call.future.done():
            call.future.set_result(outcome)

    def _timed_out(self, call: _Call, limit: float) -> CallTimeout:
        if call.running:
            call.stuck = True
            self._stuck.add(call)
            reason = f"{self.name} did not answer {call.what!r} within {limit:g} s"
        else:
            reason = (f"{self.name}: no thread free for {call.what!r} within {limit:g} s "
                      f"({self.max_threads} calls running, {len(self._stuck)} of them unanswered)")  # fmt: skip
        log.warning("%s", reason)
        if not self.health.reason:  # the first timeout names the hang until it ends (no churn)
            self.health.degrade(reason)
        return CallTimeout(reason)

"""TimedCalls: every blocking hypervisor call has a deadline, the loop never waits on a hung one,
stuck threads are bounded, and the health follows: degraded on a timeout, clear once calls answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from services.compute.drivers.base import DriverError
from services.compute.drivers.health import HypervisorHealth
from services.compute.drivers.timed_calls import CallTimeout, TimedCalls

TIMEOUT_S = 0.2


class Hypervisor:
    """Blocking calls that hang while ``hung`` is set (each on its caller's thread, as libvirt's)."""

    def __init__(self) -> None:
        self.resumed = threading.Event()
        self.resumed.set()
        self.threads: set[str] = set()
        self.entered = 0
        self._lock = threading.Lock()

    def hang(self) -> None:
        self.resumed.clear()

    def answer(self) -> None:
        self.resumed.set()

    def version(self, plus: int = 0) -> int:
        with self._lock:
            self.threads.add(threading.current_thread().name)
            self.entered += 1
        self.resumed.wait()
        return 1000 + plus

    def broken(self) -> int:
        self.resumed.wait()
        raise RuntimeError("no such domain")


@pytest.fixture
def hypervisor() -> Iterator[Hypervisor]:
    hv = Hypervisor()
    yield hv
    hv.answer()  # no thread left waiting after a test


def calls(max_threads: int = 4) -> TimedCalls:
    return TimedCalls("test hypervisor", TIMEOUT_S, max_threads)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_call_that_answers_returns_its_value_off_the_loop(hypervisor: Hypervisor) -> None:
    timed = calls()
    assert await timed.run("reading the version", hypervisor.version, 2) == 1002
    assert threading.current_thread().name not in hypervisor.threads
    assert timed.health.reason == ""


async def test_an_error_in_time_is_raised_as_it_is_and_is_an_answer(hypervisor: Hypervisor) -> None:
    timed = calls()
    with pytest.raises(RuntimeError, match="no such domain"):
        await timed.run("looking up", hypervisor.broken)
    assert timed.health.reason == ""


async def test_a_hung_call_times_out_without_blocking_the_loop(hypervisor: Hypervisor) -> None:
    timed = calls()
    hypervisor.hang()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    with pytest.raises(CallTimeout) as exc:
        await timed.run("reading the domain state", hypervisor.version)
    task.cancel()
    assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 0.5
    assert ticks >= 5  # the loop went on meanwhile
    assert isinstance(exc.value, DriverError)
    assert str(exc.value) == "test hypervisor did not answer 'reading the domain state' within 0.2 s"
    assert timed.stuck == 1


async def test_the_health_is_degraded_by_a_timeout_and_clears_once_calls_answer(hypervisor: Hypervisor) -> None:
    timed = calls()
    seen: list[str] = []
    timed.health.listen(seen.append)
    hypervisor.hang()
    with pytest.raises(CallTimeout):
        await timed.run("listing domains", hypervisor.version)
    assert timed.health.reason == "test hypervisor did not answer 'listing domains' within 0.2 s"
    hypervisor.answer()
    await until(lambda: timed.stuck == 0)  # the stuck thread got its late answer...
    assert timed.health.reason != ""  # ...which cleared nothing: it was not in time
    assert await timed.run("listing domains", hypervisor.version) == 1000
    assert timed.health.reason == ""
    assert seen == ["test hypervisor did not answer 'listing domains' within 0.2 s", ""]


async def test_an_answer_in_time_does_not_clear_while_a_call_is_still_stuck(hypervisor: Hypervisor) -> None:
    timed = calls()
    hypervisor.hang()
    with pytest.raises(CallTimeout):
        await timed.run("reading the domain state", hypervisor.version)
    assert await timed.run("a call that does not hang", lambda: 7) == 7
    assert timed.stuck == 1 and timed.health.reason != ""


async def test_stuck_threads_are_bounded_and_further_calls_refused_at_once(hypervisor: Hypervisor) -> None:
    timed = calls(max_threads=2)
    hypervisor.hang()
    results = await asyncio.gather(*(timed.run(f"call {i}", hypervisor.version) for i in range(3)),
                                   return_exceptions=True)  # fmt: skip
    assert all(isinstance(r, CallTimeout) for r in results)
    # two ran and are stuck; the third never got a thread
    assert timed.stuck == 2
    assert sum("no thread free" in str(r) for r in results) == 1
    assert hypervisor.entered == 2  # no third thread
    started = time.monotonic()
    with pytest.raises(CallTimeout, match=r"has not answered 2 calls \(the oldest, 'call 0'.*not trying 'next'"):
        await timed.run("next", hypervisor.version)
    assert time.monotonic() - started < 0.05  # refused without waiting
    hypervisor.answer()
    await until(lambda: timed.stuck == 0)
    assert await timed.run("next", hypervisor.version) == 1000


async def test_a_long_call_may_have_a_longer_timeout(hypervisor: Hypervisor) -> None:
    timed = calls()

    def slow_save() -> int:
        time.sleep(0.3)
        return 5

    assert await timed.run("saving memory", slow_save, timeout_s=2.0) == 5
    with pytest.raises(CallTimeout, match=r"within 0\.2 s"):
        await timed.run("saving memory", lambda: time.sleep(0.3))


async def test_a_cancelled_caller_leaves_no_stuck_call(hypervisor: Hypervisor) -> None:
    timed = calls()
    hypervisor.hang()
    task = asyncio.create_task(timed.run("reading", hypervisor.version))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert timed.stuck == 0 and timed.health.reason == ""
    hypervisor.answer()
    assert await timed.run("reading", hypervisor.version) == 1000


async def test_threads_are_daemons_so_a_stuck_call_never_holds_up_exit(hypervisor: Hypervisor) -> None:
    timed = calls()
    hypervisor.hang()
    with pytest.raises(CallTimeout):
        await timed.run("reading", hypervisor.version)
    stuck = [t for t in threading.enumerate() if t.name == "hypervisor-call"]
    assert stuck and all(t.daemon for t in stuck)


def test_health_needs_a_reason_and_tells_only_changes() -> None:
    health = HypervisorHealth()
    seen: list[str] = []
    health.listen(seen.append)
    with pytest.raises(ValueError, match="reason"):
        health.degrade("")
    health.recover()
    health.degrade("slow")
    health.degrade("slow")
    health.recover()
    assert seen == ["slow", ""]


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        TimedCalls("x", 0, 1)
    with pytest.raises(ValueError, match="max_threads"):
        TimedCalls("x", 1, 0)


async def test_the_first_timeout_names_the_hang_until_it_ends(hypervisor: Hypervisor) -> None:
    timed = calls()
    hypervisor.hang()
    for what in ("listing domains", "reading the domain state"):
        with pytest.raises(CallTimeout, match=what):
            await timed.run(what, hypervisor.version)
    assert timed.health.reason == "test hypervisor did not answer 'listing domains' within 0.2 s"

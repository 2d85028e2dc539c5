"""The supervisor of background loops: a body that fails or ends is logged with its traceback,
counted and run again after a capped, jittered backoff (reset after a healthy run); a cancellation
of its task ends it; ``until`` lets a loop end on purpose."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from services.core import supervise
from services.core.supervise import Policy, spawn_supervised, supervised
from tests.support.supervision import Injected, Restarts

POLICY = Policy(first_s=1.0, cap_s=8.0, healthy_s=60.0)


class Metric:
    """Stands in for the OpenTelemetry counter."""

    def __init__(self) -> None:
        self.added: list[tuple[int, dict[str, Any]]] = []

    def add(self, amount: int, attributes: dict[str, Any]) -> None:
        self.added.append((amount, attributes))


@pytest.fixture
def metric(monkeypatch: pytest.MonkeyPatch) -> Metric:
    fake = Metric()
    monkeypatch.setattr(supervise, "_counter", fake)
    return fake


class Scripted:
    """A body that runs ``script`` (one outcome per run: an exception to raise, "return", or
    ``seconds`` the fake clock moves on before it fails), ending the supervision after the last."""

    def __init__(self, *script: BaseException | str | float) -> None:
        self.script = list(script)
        self.runs = 0
        self.now = 0.0
        self.delays: list[float] = []

    def done(self) -> bool:
        return self.runs >= len(self.script)

    async def body(self) -> None:
        step = self.script[self.runs]
        self.runs += 1
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            self.now += step
            raise Injected("failed after a while")

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    async def run(self, policy: Policy = POLICY) -> None:
        await supervised("test-loop", self.body, until=self.done, policy=policy, clock=lambda: self.now,
                         sleep=self.sleep)  # fmt: skip


async def test_a_failing_body_is_logged_counted_and_run_again(metric: Metric, caplog: pytest.LogCaptureFixture) -> None:
    restarts = Restarts("test-loop")
    loop = Scripted(Injected("boom"), "return")
    with caplog.at_level(logging.ERROR, logger="services.core.supervise"):
        await loop.run()
    assert loop.runs == 2 and len(loop.delays) == 1
    assert metric.added == [(1, {"loop": "test-loop"})] and restarts.count == 1
    (record,) = caplog.records
    assert "test-loop" in record.getMessage() and record.exc_info is not None
    assert isinstance(record.exc_info[1], Injected)


async def test_a_body_that_returns_is_run_again(metric: Metric, caplog: pytest.LogCaptureFixture) -> None:
    loop = Scripted("return", "return", "return")
    with caplog.at_level(logging.ERROR, logger="services.core.supervise"):
        await loop.run()
    assert loop.runs == 3 and len(metric.added) == 2
    assert all("ended unexpectedly" in r.getMessage() for r in caplog.records)


async def test_the_delays_double_up_to_the_cap_with_jitter(metric: Metric) -> None:
    loop = Scripted(*[Injected(str(i)) for i in range(9)])
    await loop.run()
    steps = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert len(loop.delays) == len(steps)
    for delay, step in zip(loop.delays, steps, strict=True):
        assert step / 2 <= delay <= step
    assert len(metric.added) == 8


async def test_the_delays_start_over_after_a_healthy_run(metric: Metric) -> None:
    loop = Scripted(Injected("1"), Injected("2"), Injected("3"), 61.0, Injected("5"))
    await loop.run()
    assert len(loop.delays) == 4
    assert 2.0 <= loop.delays[2] <= 4.0  # the third failure in a row
    assert 0.5 <= loop.delays[3] <= 1.0  # after a run of 61 s: the first step again


async def test_until_ends_the_supervision_on_a_return_or_a_failure(metric: Metric) -> None:
    ending = Scripted(Injected("as it ends"))
    await ending.run()
    returning = Scripted("return")
    await returning.run()
    assert (ending.runs, returning.runs) == (1, 1) and metric.added == []


async def test_a_cancelled_task_ends_with_its_body(metric: Metric) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def body() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            finished.set()

    task = spawn_supervised("cancelled-loop", body)
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set() and task.get_name() == "cancelled-loop" and metric.added == []


async def test_a_cancellation_during_the_backoff_ends_it(metric: Metric) -> None:
    async def body() -> None:
        raise Injected("boom")

    task = spawn_supervised("backing-off", body, policy=Policy(first_s=30.0))
    restarts = Restarts("backing-off")
    await restarts.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert restarts.count == 1


async def test_a_cancelled_error_from_inside_the_body_is_a_failure(metric: Metric) -> None:
    """A call inside the body cancelled on its own (a closed gRPC channel): not the task's cancellation."""
    loop = Scripted(asyncio.CancelledError(), "return")
    await loop.run()
    assert loop.runs == 2 and len(metric.added) == 1

"""Every loop meant to run for the life of the process runs under ``supervised``: when its body
raises (anything but a cancellation) or returns when it should not, the failure is logged with
its traceback, counted (the OpenTelemetry counter ``stratus.loop.restarts``, attribute ``loop``)
and the body runs again after a capped, jittered backoff, which starts over once the body has
run healthily for a while. A loop that must end on purpose (a lost lease, a stopping launcher)
says so with ``until``: once it is true, a return or a failure ends the supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics

from services.core.backoff import backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    """Restart delays: from about ``first_s`` doubling to ``cap_s`` (each delay jittered down to
    half), back to ``first_s`` after a body that ran ``healthy_s`` before it failed."""

    first_s: float = 1.0
    cap_s: float = 30.0
    healthy_s: float = 60.0


DEFAULT = Policy()
restarts: Counter[str] = Counter()  # loop name -> restarts in this process (what the metric counts)
_counter = metrics.get_meter("stratus").create_counter(
    "stratus.loop.restarts", unit="1", description="background loops restarted after a failure or an unexpected end"
)


def _count(name: str) -> None:
    restarts[name] += 1
    _counter.add(1, {"loop": name})


def _cancelled_here() -> bool:
    """Whether this task is being cancelled (not a CancelledError that a call inside the body raised
    on its own, as a gRPC call whose channel closed does)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def _run_once(body: Callable[[], Awaitable[None]]) -> BaseException | None:
    """What the body failed with; None when it returned."""
    try:
        await body()
    except asyncio.CancelledError as exc:
        if _cancelled_here():
            raise
        return exc
    except Exception as exc:
        return exc
    return None


async def supervised(
    name: str,
    body: Callable[[], Awaitable[None]],
    *,
    until: Callable[[], bool] | None = None,
    policy: Policy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Runs ``body`` again and again until cancelled (or, with ``until``, until that is true when
    the body ends). Cancelling the task that runs it ends the supervision with the body."""
    policy = policy or DEFAULT
    delays = backoff(policy.first_s, policy.cap_s)
    while True:
        started = clock()
        error = await _run_once(body)
        if until is not None and until():
            if error is not None:
                log.warning("background loop %s failed as it ended", name, exc_info=error)
            return
        _count(name)
        if clock() - started >= policy.healthy_s:
            delays = backoff(policy.first_s, policy.cap_s)
        delay = next(delays)
        if error is None:
            log.error("background loop %s ended unexpectedly; restarting it in %.1fs", name, delay)
        else:
            log.error("background loop %s failed; restarting it in %.1fs", name, delay, exc_info=error)
        await sleep(delay)


def spawn_supervised(
    name: str,
    body: Callable[[], Awaitable[None]],
    *,
    until: Callable[[], bool] | None = None,
    policy: Policy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> asyncio.Task[None]:
    """A task (named ``name``) running ``supervised(name, body, ...)``; cancel it to stop the loop."""
    return asyncio.create_task(supervised(name, body, until=until, policy=policy, clock=clock, sleep=sleep), name=name)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancels ``task`` (if there is one) and waits until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""While the stack runs: restart what exits, and keep stack.json in step with the registrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from services.core.etcd import Store
from services.launcher.registry import ETCD_DOWN, read_services, take_registrations
from services.launcher.supervised import Supervised

log = logging.getLogger("stratus.up")
TICK_S = 0.2
Release = Callable[[Supervised, int], Awaitable[object]]
REGISTRY_POLL_S = 1.0


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def tend(proc: Supervised, now: float) -> None:
    """Notices an exit and schedules the restart, or restarts when the backoff is over."""
    if proc.restart_at is None:
        code = proc.exit_code()
        if code is None:
            return
        uptime = now - proc.started_at
        delay = proc.backoff.next_delay(uptime)
        proc.restart_at = now + delay
        log.warning(
            "%s (pid %d) exited with code %d after %.0fs; restarting in %gs (log: %s)",
            proc.name, proc.pid, code, uptime, delay, proc.log_path,
        )  # fmt: skip
    elif now >= proc.restart_at:
        proc.start()
        log.warning("%s restarted as pid %d%s", proc.name, proc.pid, f" on port {proc.port}" if proc.port else "")


async def keep_running(procs: Sequence[Supervised], stop: asyncio.Event, release: Release | None = None) -> None:
    """Tends every process; ``release`` is told of each exit (the process and its pid) before the
    restart, so that what the dead process held can be let go at once."""
    while not stop.is_set():
        now = time.monotonic()
        for proc in procs:
            if stop.is_set():
                return
            dead = proc.pid if proc.restart_at is None else 0
            tend(proc, now)
            if dead and proc.restart_at is not None and release is not None:
                await release(proc, dead)
        await pause(stop, TICK_S)


async def follow_registrations(
    store: Store, services: Sequence[Supervised], changed: Callable[[], None], stop: asyncio.Event
) -> None:
    """Polls the registrations; calls ``changed`` when a service's pid or endpoint moved."""
    etcd_was_down = False
    while not stop.is_set():
        await pause(stop, REGISTRY_POLL_S)
        try:
            records = await read_services(store, services)
        except ETCD_DOWN as exc:
            if not etcd_was_down:
                log.warning("cannot read registrations from etcd (%s); retrying", type(exc).__name__)
            etcd_was_down = True
            continue
        etcd_was_down = False
        if take_registrations(records, services):
            changed()

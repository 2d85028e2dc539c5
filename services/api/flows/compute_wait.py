"""A long compute call as a flow step: ask the compute (it answers at once; one that does not
answer is asked again with backoff), then wait for the outcome it writes into the record. The
wait is woken by the record's changes (``RecordEvents``) and bounded by the call's deadline; it
also watches the compute process that was asked:

- the same host back under a new process (a restart): asked again, the call is idempotent;
- no process on the host for ``compute_down_grace_s``: the attempt failed (COMPUTE_DOWN), the
  flow moves on (a build tries another host); the host, when back, removes what it had made."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.api.flows.base import Deps, action_deadline, flow_deadline, pause
from services.core import instances
from services.core.backoff import backoff
from services.core.errors import (
    STORE_REASONS,
    DeadlineExceeded,
    NotFound,
    StratusError,
    Unavailable,
    error_from,
)
from services.core.etcd import is_store_outage
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)
TICK_S = 1.0  # how often the compute's process is looked at (in memory: the service directory)
READ_EVERY_S = 10.0  # how often the record is read without a wake-up (a missed event)


@dataclass(frozen=True, slots=True)
class Ended:
    """The call is over: ``error`` says why it failed, None when it succeeded (or the record
    moved on, e.g. a delete came: the flow re-reads it)."""

    error: StratusError | None = None


Decide = Callable[[state_pb2.InstanceRecord | None], Ended | None]


def reported_error(record: state_pb2.InstanceRecord) -> StratusError | None:
    """The fault the compute reported, None for a reported success."""
    if not record.report.HasField("fault"):
        return None
    fault = record.report.fault
    return error_from(fault.code, fault.message, fault.reason, fault.metadata)


async def on_compute(
    deps: Deps, host: str, instance_id: str,
    what: str, ask: Callable[[], Awaitable[None]], decide: Decide, timeout_s: float,
) -> Ended:  # fmt: skip
    """Asks (``ask`` raises what the compute refused with), then waits for ``decide`` to say the
    call ended. Raises DeadlineExceeded past ``timeout_s`` or the action's deadline (past it the
    compute is not asked again: only the record's outcome still counts), Unavailable(COMPUTE_DOWN)
    when the host has no compute for ``compute_down_grace_s``."""
    loop = asyncio.get_running_loop()
    deadline = min(loop.time() + timeout_s, action_deadline())
    while True:
        incarnation = deps.peers.incarnation("compute", host)
        if loop.time() < deadline:
            await _asked(deps, host, instance_id, what, ask)
        ended = await _wait(deps, host, instance_id, incarnation, decide, deadline, what)
        if ended is not None:
            return ended
        log.warning("%s of %s: compute %s restarted; asking it again", what, instance_id, host)


async def _asked(deps: Deps, host: str, instance_id: str, what: str, ask: Callable[[], Awaitable[None]]) -> None:
    """``ask`` until the compute answers: one that cannot reach etcd is asked again until the
    flow's deadline, one that cannot be reached (restarting) for ``compute_down_grace_s``."""
    loop = asyncio.get_running_loop()
    down_until, delays = loop.time() + deps.limits.compute_down_grace_s, backoff()
    flow_until = flow_deadline(deps.limits)
    while True:
        try:
            await ask()
            return
        except Unavailable as err:
            until = flow_until if err.reason in STORE_REASONS else min(down_until, flow_until)
            if not await pause(delays, until):
                raise
            log.warning("%s of %s: compute %s did not answer (%s); asking again", what, instance_id, host,
                        err.message)  # fmt: skip


async def _wait(
    deps: Deps, host: str, instance_id: str, incarnation: int,
    decide: Decide, deadline: float, what: str,
) -> Ended | None:  # fmt: skip
    """The outcome, or None when another process now serves the host (ask it again)."""
    events = deps.events
    with events.watching(instance_id) if events else contextlib.nullcontext() as changed:
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        read_at = -READ_EVERY_S
        while True:
            if changed is None or changed.is_set() or loop.time() - read_at >= READ_EVERY_S:
                if changed is not None:
                    changed.clear()  # before the read: a change after it wakes the next sleep
                read_at = loop.time()
                ended = await _decided(deps, instance_id, decide)
                if ended is not None:
                    return ended
            now = loop.time()
            if now >= deadline:
                raise DeadlineExceeded(f"the {what} on {host} did not finish in time", reason="COMPUTE_TIMEOUT",
                                       metadata={"host": host})  # fmt: skip
            current = deps.peers.incarnation("compute", host)
            if current and current != incarnation:
                return None
            down_since = None if current else (down_since if down_since is not None else now)
            if down_since is not None and now - down_since >= deps.limits.compute_down_grace_s:
                raise Unavailable(f"compute {host} went down during the {what}", reason="COMPUTE_DOWN",
                                  metadata={"host": host})  # fmt: skip
            await _sleep(changed, min(TICK_S, deadline - now))


async def _sleep(changed: asyncio.Event | None, seconds: float) -> None:
    """Up to ``seconds``, less if the record changes (no events: a short poll)."""
    if changed is None:
        await asyncio.sleep(min(seconds, 0.2))
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(changed.wait(), seconds)


async def _decided(deps: Deps, instance_id: str, decide: Decide) -> Ended | None:
    """What the record says (a record gone is for ``decide`` to judge); an etcd outage says
    nothing yet (the deadline still holds)."""
    try:
        record: state_pb2.InstanceRecord | None
        record, _ = await instances.get(deps.store, instance_id)
    except NotFound:
        record = None
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        log.warning("server %s: cannot read its record now (%s)", instance_id, exc)
        return None
    return decide(record)

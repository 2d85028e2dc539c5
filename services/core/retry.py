"""One way to retry a compare-and-swap: read, change, write comparing what was read.

An attempt that loses its race (the write's compare failed: someone wrote first) waits a short,
fully jittered delay (``backoff.RACE_S``) and reads again. After ``attempts`` lost races it gives
up with ``TooFast``, an ABORTED error that says "<what> is changing too fast; try again". A caller
that must not fail (a step of the action log) catches ``TooFast`` and says what it skipped.

Two shapes of the same loop:

- ``swap(read, change, write)``: the value and its revision are read, ``change`` (pure) changes the
  value in place, or returns False when there is nothing to do (nothing is written, the value as
  read is returned), and ``write`` writes it comparing the revision read (False: the race is lost);
- ``until_done(attempt)``: one attempt does it all and returns its result, or ``AGAIN`` to be read
  again (for attempts whose reads depend on what they decide, or that settle a lost answer).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from services.core.backoff import FULL_JITTER, RACE_S, backoff
from services.core.errors import Aborted

T = TypeVar("T")
V = TypeVar("V")
R = TypeVar("R")
MAX_ATTEMPTS = 50


class Again(enum.Enum):
    AGAIN = "again"


AGAIN: Final = Again.AGAIN  # an attempt's answer: the race is lost, read again


class TooFast(Aborted):
    """A compare-and-swap kept losing its race ``attempts`` times: nothing of it was written."""


async def until_done(
    attempt: Callable[[], Awaitable[T | Again]], *, what: str, attempts: int = MAX_ATTEMPTS, reason: str | None = None
) -> T:
    """``attempt`` until it returns anything but ``AGAIN``, at most ``attempts`` times, with a
    jittered pause before each retry; then ``TooFast`` (with ``reason`` when given)."""
    delays = backoff(*RACE_S, jitter=FULL_JITTER)
    for tried in range(attempts):
        if tried:
            await asyncio.sleep(next(delays))
        result = await attempt()
        if result is not AGAIN:
            return result
    raise TooFast(f"{what} is changing too fast; try again", reason=reason)


async def swap(
    read: Callable[[], Awaitable[tuple[V, R]]],
    change: Callable[[V], bool | None],
    write: Callable[[V, R], Awaitable[bool]],
    *,
    what: str,
    attempts: int = MAX_ATTEMPTS,
) -> V:
    """Reads (value, revision), applies ``change`` to the value, writes it comparing the revision
    (``write`` returns False on a lost race); returns the value as written, or as read when
    ``change`` returned False. ``read`` and ``change`` may raise to refuse (NotFound, ...)."""

    async def attempt() -> V | Again:
        value, revision = await read()
        if change(value) is False:
            return value
        return value if await write(value, revision) else AGAIN

    return await until_done(attempt, what=what, attempts=attempts)

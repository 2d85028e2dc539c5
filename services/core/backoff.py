"""Capped exponential delays with jitter: the one way anything here waits before trying again.

Each kind of wait has its pace here, a (first, cap) pair in seconds: no loop picks its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

FIRST_S = 0.5  # waiting out an outage: etcd, a scheduler, a compute or the api unreachable
CAP_S = 5.0
RECONNECT_S = (0.1, 3.0)  # a lost watch, keepalive or registration; a cache reload; a seen or stats write
SETTLE_S = (0.05, 0.2)  # reading back again a write whose answer was lost
RACE_S = (0.005, 0.05)  # after a lost compare-and-swap race (retry.py), with FULL_JITTER
LOCK_S = (0.005, 0.2)  # a file lock another process holds
JITTER = 0.5  # each delay between (1 - jitter) and all of its step
FULL_JITTER = 1.0


def backoff(first_s: float = FIRST_S, cap_s: float = CAP_S, *, jitter: float = JITTER) -> Iterator[float]:
    """Each delay between ``1 - jitter`` and all of its step; the steps double up to ``cap_s``."""
    step = first_s
    while True:
        yield step * random.uniform(1.0 - jitter, 1.0)
        step = min(step * 2, cap_s)

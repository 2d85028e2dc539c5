"""Capped exponential delays with jitter, for whatever waits out an outage and tries again."""

from __future__ import annotations

import random
from collections.abc import Iterator

FIRST_S = 0.5
CAP_S = 5.0


def backoff(first_s: float = FIRST_S, cap_s: float = CAP_S) -> Iterator[float]:
    """Each delay between half and all of its step; the steps double up to ``cap_s``."""
    step = first_s
    while True:
        yield step * random.uniform(0.5, 1.0)
        step = min(step * 2, cap_s)

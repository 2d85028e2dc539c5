"""The weigher interface, after Nova's ``nova/weights.py``.

Each weigher gives every candidate a raw score; the scores are normalised to 0..1 across the
candidates (or against the weigher's fixed ``minval``/``maxval``), multiplied by the weigher's
multiplier and summed over weighers. The highest total wins; ties go to the host name, so the
choice is deterministic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class Weigher(ABC):
    name: ClassVar[str]
    # Fixed bounds for normalising; None takes the bound from the candidates.
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    @abstractmethod
    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        """The raw score; higher is better before the multiplier."""

    def weight_multiplier(self, host: HostState) -> float:
        return self.multiplier


@dataclass(frozen=True, slots=True)
class WeighedHost:
    host: HostState
    weight: float


def normalize(values: Sequence[float], minval: float | None = None, maxval: float | None = None) -> list[float]:
    """Scales values to 0..1 between minval and maxval; all zeros when there is no spread."""
    if not values:
        return []
    low = min(values) if minval is None else minval
    high = max(values) if maxval is None else maxval
    if high == low:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def weigh_hosts(
    weighers: Sequence[Weigher], hosts: Sequence[HostState], request: SchedulingRequest
) -> list[WeighedHost]:
    """The hosts, best first."""
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        raw = [weigher.weigh(host, request) for host in hosts]
        for i, score in enumerate(normalize(raw, weigher.minval, weigher.maxval)):
            totals[i] += weigher.weight_multiplier(hosts[i]) * score
    weighed = [WeighedHost(host, total) for host, total in zip(hosts, totals, strict=True)]
    weighed.sort(key=lambda w: (-w.weight, w.host.host))
    return weighed

"""The weigher interface, after Nova's ``nova/weights.py``.

Each weigher gives every candidate a raw score, held within the weigher's ``minval``/``maxval``
where it sets them; the scores are normalised to 0..1 across the candidates (or against those
fixed bounds), multiplied by the weigher's multiplier and summed over weighers. The highest total
wins; ties go to the host name, so the choice is deterministic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class Weigher(ABC):
    name: ClassVar[str]
    # Fixed bounds: a raw score is held within them (Nova's clamp) and they normalise it; None
    # takes the bound from the candidates.
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None
    # Nova's option name for the multiplier ("ram_weight_multiplier"): read from the options
    # (settings + options file) and, per host, from its aggregates' metadata (minimum wins).
    multiplier_option: ClassVar[str] = ""
    default_multiplier: ClassVar[float] = 1.0

    def __init__(self, multiplier: float | None = None) -> None:
        self.multiplier = self.default_multiplier if multiplier is None else float(multiplier)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Builds a configured instance from the merged scheduler options (settings + options file).

        The multiplier comes from ``options["weight_multipliers"][cls.name]``, else from
        ``options[cls.multiplier_option]``, else ``default_multiplier``. A bad value raises
        ValueError with a clear message.
        """
        by_name = options.get("weight_multipliers") or {}
        if cls.name in by_name:
            return cls(option_float(f"weight_multipliers[{cls.name}]", by_name[cls.name]))
        if cls.multiplier_option and cls.multiplier_option in options:
            return cls(option_float(cls.multiplier_option, options[cls.multiplier_option]))
        return cls()

    def is_relevant(self, request: SchedulingRequest) -> bool:
        """False when this weigher gives every host the same score for this request; the engine
        then skips it."""
        return True

    @abstractmethod
    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        """The raw score; higher is better before the multiplier."""

    def score(self, host: HostState, request: SchedulingRequest) -> float:
        """The raw score held within ``minval`` and ``maxval``."""
        value = self.weigh(host, request)
        if self.minval is not None:
            value = max(value, self.minval)
        if self.maxval is not None:
            value = min(value, self.maxval)
        return value

    def weight_multiplier(self, host: HostState) -> float:
        """The configured multiplier, or the smallest valid ``multiplier_option`` value among the
        host's aggregates' metadata (Nova's per-aggregate override)."""
        if self.multiplier_option:
            override = host.aggregate_number(self.multiplier_option)
            if override is not None:
                return override
        return self.multiplier


def option_float(key: str, value: Any) -> float:
    """A number option as float; ValueError naming the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number, not {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number, not {value!r}") from None


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
        raw = [weigher.score(host, request) for host in hosts]
        for i, score in enumerate(normalize(raw, weigher.minval, weigher.maxval)):
            totals[i] += weigher.weight_multiplier(hosts[i]) * score
    weighed = [WeighedHost(host, total) for host, total in zip(hosts, totals, strict=True)]
    weighed.sort(key=lambda w: (-w.weight, w.host.host))
    return weighed

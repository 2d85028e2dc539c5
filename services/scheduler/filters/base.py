"""The filter interface: a filter looks at one host and one request and says why it refuses.

A filter is pure: it reads a ``HostState`` snapshot and the ``RequestSpec`` and returns None when
the host passes, or a reason in the user's terms when it does not ("4096 MB RAM needed, 1024 MB
free"). ``explain`` turns the refusals of one scheduling request into one phrase for the
NO_VALID_HOST message; resource filters say how much the best refused host had.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

Refusal = tuple[HostState, str]


class Filter(ABC):
    name: ClassVar[str]
    # The resource a refusal is about ("ram_mb", "vcpus", ...), reported in the error's metadata.
    resource: ClassVar[str] = ""
    # Scheduler option keys this filter reads beyond SchedulerSettings' own (for the options file's
    # check of unknown keys).
    option_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Builds a configured instance from the merged scheduler options (settings + options file).

        Filters with no options ignore them. A bad value raises ValueError with a clear message.
        """
        return cls()

    def is_relevant(self, request: SchedulingRequest) -> bool:
        """False when this filter cannot refuse any host for this request (e.g. no hint); the
        engine then skips it."""
        return True

    @abstractmethod
    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        """None when the host passes; otherwise why not."""

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        """One phrase for all the hosts this filter refused (at least one)."""
        host, reason = refused[0]
        return f"{host.host}: {reason}"


class ResourceFilter(Filter):
    """Refuses hosts with less free of one resource than the request needs, where
    free = total * allocation ratio - reserved - claimed. The ratio is the option ``ratio_option``
    (e.g. ``ram_allocation_ratio``), or the smallest value of that key in the host's aggregates'
    metadata (Nova's Aggregate*Filter)."""

    label: ClassVar[str]  # "MB RAM"
    unit: ClassVar[str]  # "MB"
    ratio_option: ClassVar[str]  # "ram_allocation_ratio"
    default_ratio: ClassVar[float] = 1.0

    def __init__(self, allocation_ratio: float | None = None) -> None:
        ratio = self.default_ratio if allocation_ratio is None else float(allocation_ratio)
        if not ratio > 0:  # also refuses NaN
            raise ValueError(f"{self.ratio_option} must be greater than 0, not {allocation_ratio!r}")
        self.ratio = ratio

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        value = options.get(cls.ratio_option)
        if value is None:
            return cls()
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{cls.ratio_option} must be a number, not {value!r}")
        try:
            return cls(float(value))
        except ValueError:
            raise ValueError(f"{cls.ratio_option} must be a number greater than 0, not {value!r}") from None

    @abstractmethod
    def needed(self, request: SchedulingRequest) -> int: ...

    @abstractmethod
    def totals(self, host: HostState) -> tuple[int, int, int]:
        """(total, reserved, claimed) of the resource on the host."""

    def ratio_for(self, host: HostState) -> float:
        override = host.aggregate_number(self.ratio_option)
        return self.ratio if override is None else override

    def free(self, host: HostState) -> float:
        total, reserved, claimed = self.totals(host)
        return total * self.ratio_for(host) - (reserved + claimed)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        needed, free = self.needed(request), self.free(host)
        if needed <= free:
            return None
        return f"{needed} {self.label} needed, {self._amount(free)} free"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        best = max(self.free(host) for host, _ in refused)
        return f"{self.needed(request)} {self.label} needed, at most {self._amount(best)} free"

    def _amount(self, value: float) -> str:
        return f"{max(math.floor(value), 0)} {self.unit}".rstrip()

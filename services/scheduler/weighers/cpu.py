"""CPUWeigher: more free vCPUs first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from services.scheduler.filters.core import CoreFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher, option_float


class CPUWeigher(Weigher):
    """More free vCPUs first (spreads); a negative multiplier stacks. Free counts the CPU
    allocation ratio, as Nova's does (total * ratio - used) and as the CoreFilter sees it."""

    name = "CPUWeigher"
    minval = 0.0
    multiplier_option = "cpu_weight_multiplier"

    def __init__(self, multiplier: float | None = None, allocation_ratio: float | None = None) -> None:
        super().__init__(multiplier)
        self.core = CoreFilter(allocation_ratio)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        multiplier = super().from_options(options).multiplier
        ratio = options.get(CoreFilter.ratio_option)
        return cls(multiplier, None if ratio is None else option_float(CoreFilter.ratio_option, ratio))

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return self.core.free(host)

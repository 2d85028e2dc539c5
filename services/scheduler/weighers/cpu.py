from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class CPUWeigher(Weigher):
    """More free vCPUs first (spreads); a negative multiplier stacks."""

    name = "CPUWeigher"
    multiplier_option = "cpu_weight_multiplier"

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.free_vcpus)

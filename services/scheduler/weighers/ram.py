"""RamWeigher: more free RAM first."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class RamWeigher(Weigher):
    """More free RAM first (spreads); a negative multiplier fills hosts first (stacks)."""

    name = "RamWeigher"
    minval = 0.0  # as Nova: an over-committed host scores 0, not below
    multiplier_option = "ram_weight_multiplier"

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.free_ram_mb)

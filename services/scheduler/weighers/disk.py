"""DiskWeigher: more free disk first."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class DiskWeigher(Weigher):
    """More free disk first (spreads); a negative multiplier stacks."""

    name = "DiskWeigher"
    minval = 0.0  # as Nova: an over-committed host scores 0, not below
    multiplier_option = "disk_weight_multiplier"

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.free_disk_gb)

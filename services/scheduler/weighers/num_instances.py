"""NumInstancesWeigher: by instance count (off by default)."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class NumInstancesWeigher(Weigher):
    """The raw score is the host's instance count; off by default (multiplier 0.0), positive
    packs, negative spreads."""

    name = "NumInstancesWeigher"
    multiplier_option = "num_instances_weight_multiplier"
    default_multiplier = 0.0

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.num_instances)

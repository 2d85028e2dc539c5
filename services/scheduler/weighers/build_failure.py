"""BuildFailureWeigher: hosts that failed recent builds sink."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class BuildFailureWeigher(Weigher):
    """Hosts that failed recent builds sink: the score is minus the failures since the host's last
    successful build, with a multiplier (default 1e6) that outweighs the others."""

    name = "BuildFailureWeigher"
    multiplier_option = "build_failure_weight_multiplier"
    default_multiplier = 1_000_000.0

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return -float(host.stats.failed_builds)

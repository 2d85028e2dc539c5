"""IoOpsWeigher: fewer I/O-heavy tasks first."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers.base import Weigher


class IoOpsWeigher(Weigher):
    """The raw score is the host's I/O-heavy tasks, counting the builds claimed since the compute
    last reported (as Nova's scheduler counts each host it just chose); the default multiplier
    -1.0 puts the least busy hosts first."""

    name = "IoOpsWeigher"
    minval = 0.0
    multiplier_option = "io_ops_weight_multiplier"
    default_multiplier = -1.0

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.io_ops)

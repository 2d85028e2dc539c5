from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.weighers.base import Weigher
from stratus.scheduler.v1 import scheduler_pb2


class RamWeigher(Weigher):
    """More free RAM first (spreads); a negative multiplier fills hosts first (stacks)."""

    name = "RamWeigher"

    def weigh(self, host: HostState, spec: scheduler_pb2.RequestSpec) -> float:
        return float(host.free_ram_mb)

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from stratus.scheduler.v1 import scheduler_pb2


class AvailabilityZoneFilter(Filter):
    """Only hosts in the requested availability zone; no zone requested means any."""

    name = "AvailabilityZoneFilter"

    def host_passes(self, host: HostState, spec: scheduler_pb2.RequestSpec) -> str | None:
        wanted = spec.availability_zone
        if not wanted or host.availability_zone == wanted:
            return None
        return f"in zone {host.availability_zone!r}, zone {wanted!r} requested"

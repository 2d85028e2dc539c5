"""AvailabilityZoneFilter: only hosts in the requested zone."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class AvailabilityZoneFilter(Filter):
    """Only hosts in the requested availability zone; no zone requested means any."""

    name = "AvailabilityZoneFilter"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        wanted = request.spec.availability_zone
        if not wanted or host.availability_zone == wanted:
            return None
        return f"in zone {host.availability_zone!r}, zone {wanted!r} requested"

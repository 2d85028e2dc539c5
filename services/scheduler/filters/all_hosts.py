"""AllHostsFilter: Nova's no-op filter."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class AllHostsFilter(Filter):
    """Every host passes (Nova's no-op filter); never run, as it is never relevant."""

    name = "AllHostsFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return False

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        return None

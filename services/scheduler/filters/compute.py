"""ComputeFilter: only hosts whose compute service is up and enabled."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class ComputeFilter(Filter):
    """Only hosts whose compute service is alive, enabled and not forced down."""

    name = "ComputeFilter"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if not host.alive:
            return "compute service is down"
        if host.forced_down:
            return "compute service is forced down"
        if not host.enabled:
            why = f" ({host.disabled_reason})" if host.disabled_reason else ""
            return f"compute service is disabled{why}"
        return None

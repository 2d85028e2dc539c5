"""ComputeFilter: only hosts whose compute service is up and enabled, and whose hypervisor answers."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class ComputeFilter(Filter):
    """Only hosts whose compute service is alive, enabled and not forced down, and whose hypervisor
    is not degraded (its calls time out: the capabilities' ``degraded_reason``)."""

    name = "ComputeFilter"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if not host.alive:
            return "compute service is down"
        if host.forced_down:
            return "compute service is forced down"
        if not host.enabled:
            why = f" ({host.disabled_reason})" if host.disabled_reason else ""
            return f"compute service is disabled{why}"
        if host.capabilities.degraded_reason:
            return f"hypervisor not answering ({host.capabilities.degraded_reason})"
        return None

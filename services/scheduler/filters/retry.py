"""RetryFilter: never a host this request already failed on."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class RetryFilter(Filter):
    """Never the hosts this request already failed on (``request.spec.ignore_hosts``)."""

    name = "RetryFilter"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if host.host in request.spec.ignore_hosts:
            return "already failed this request"
        return None

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from stratus.scheduler.v1 import scheduler_pb2


class RetryFilter(Filter):
    """Never the hosts this request already failed on (``spec.ignore_hosts``)."""

    name = "RetryFilter"

    def host_passes(self, host: HostState, spec: scheduler_pb2.RequestSpec) -> str | None:
        if host.host in spec.ignore_hosts:
            return "already failed this request"
        return None

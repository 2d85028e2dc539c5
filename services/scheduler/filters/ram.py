from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class RamFilter(ResourceFilter):
    name = "RamFilter"
    resource = "ram_mb"
    label = "MB RAM"
    unit = "MB"

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.ram_mb

    def free(self, host: HostState) -> int:
        return host.free_ram_mb

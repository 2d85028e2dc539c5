from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class DiskFilter(ResourceFilter):
    name = "DiskFilter"
    resource = "disk_gb"
    label = "GB disk"
    unit = "GB"

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.disk_gb

    def free(self, host: HostState) -> int:
        return host.free_disk_gb

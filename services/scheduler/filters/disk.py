"""DiskFilter: enough free disk (with the allocation ratio)."""

from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class DiskFilter(ResourceFilter):
    name = "DiskFilter"
    resource = "disk_gb"
    label = "GB disk"
    unit = "GB"
    ratio_option = "disk_allocation_ratio"
    default_ratio = 1.0

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.disk_gb

    def totals(self, host: HostState) -> tuple[int, int, int]:
        caps = host.capabilities
        return caps.disk_gb, caps.reserved_disk_gb, host.claimed.disk_gb

"""RamFilter: enough free RAM (with the allocation ratio)."""

from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class RamFilter(ResourceFilter):
    name = "RamFilter"
    resource = "ram_mb"
    label = "MB RAM"
    unit = "MB"
    ratio_option = "ram_allocation_ratio"
    default_ratio = 1.0

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.ram_mb

    def totals(self, host: HostState) -> tuple[int, int, int]:
        caps = host.capabilities
        return caps.ram_mb, caps.reserved_ram_mb, host.claimed.ram_mb

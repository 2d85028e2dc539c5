"""CoreFilter: enough free vCPUs (with the allocation ratio)."""

from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class CoreFilter(ResourceFilter):
    name = "CoreFilter"
    resource = "vcpus"
    label = "vCPU"
    unit = ""
    ratio_option = "cpu_allocation_ratio"
    default_ratio = 4.0

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.vcpus

    def totals(self, host: HostState) -> tuple[int, int, int]:
        caps = host.capabilities
        return caps.vcpus, caps.reserved_vcpus, host.claimed.vcpus

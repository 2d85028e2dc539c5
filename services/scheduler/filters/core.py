from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class CoreFilter(ResourceFilter):
    name = "CoreFilter"
    resource = "vcpus"
    label = "vCPU"
    unit = ""

    def needed(self, request: SchedulingRequest) -> int:
        return request.spec.resources.vcpus

    def free(self, host: HostState) -> int:
        return host.free_vcpus

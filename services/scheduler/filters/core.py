from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from stratus.scheduler.v1 import scheduler_pb2


class CoreFilter(ResourceFilter):
    name = "CoreFilter"
    resource = "vcpus"
    label = "vCPU"
    unit = ""

    def needed(self, spec: scheduler_pb2.RequestSpec) -> int:
        return spec.resources.vcpus

    def free(self, host: HostState) -> int:
        return host.free_vcpus

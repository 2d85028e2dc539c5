from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from stratus.scheduler.v1 import scheduler_pb2


class RamFilter(ResourceFilter):
    name = "RamFilter"
    resource = "ram_mb"
    label = "MB RAM"
    unit = "MB"

    def needed(self, spec: scheduler_pb2.RequestSpec) -> int:
        return spec.resources.ram_mb

    def free(self, host: HostState) -> int:
        return host.free_ram_mb

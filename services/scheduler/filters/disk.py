from __future__ import annotations

from services.scheduler.filters.base import ResourceFilter
from services.scheduler.host_state import HostState
from stratus.scheduler.v1 import scheduler_pb2


class DiskFilter(ResourceFilter):
    name = "DiskFilter"
    resource = "disk_gb"
    label = "GB disk"
    unit = "GB"

    def needed(self, spec: scheduler_pb2.RequestSpec) -> int:
        return spec.resources.disk_gb

    def free(self, host: HostState) -> int:
        return host.free_disk_gb

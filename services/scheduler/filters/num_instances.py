"""At most N instances per host: the option ``max_instances_per_host``, or per aggregate."""

from __future__ import annotations

from services.scheduler.filters.count_limit import CountLimitFilter
from services.scheduler.host_state import HostState


class NumInstancesFilter(CountLimitFilter):
    """Hosts with fewer than ``max_instances_per_host`` instances (default 50)."""

    name = "NumInstancesFilter"
    resource = "instances"
    option = "max_instances_per_host"
    default = 50
    minimum = 1
    on_host = "instances on the host"
    per_host = "instances per host"

    @property
    def max_instances(self) -> int:
        return self.maximum

    def count(self, host: HostState) -> int:
        return host.num_instances


class AggregateNumInstancesFilter(NumInstancesFilter):
    """As NumInstancesFilter, with the limit from aggregate metadata ``max_instances_per_host``."""

    name = "AggregateNumInstancesFilter"
    per_aggregate = True

"""At most N instances per host: the option ``max_instances_per_host``, or per aggregate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from services.scheduler.filters.aggregate_utils import aggregate_int
from services.scheduler.filters.base import Filter, Refusal
from services.scheduler.filters.option_values import option_int
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

OPTION = "max_instances_per_host"
DEFAULT_MAX = 50


class NumInstancesFilter(Filter):
    """Hosts with fewer than ``max_instances_per_host`` instances (default 50)."""

    name = "NumInstancesFilter"
    resource = "instances"

    def __init__(self, max_instances_per_host: int = DEFAULT_MAX) -> None:
        self.max_instances = max_instances_per_host

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(option_int(options, OPTION, DEFAULT_MAX, minimum=1))

    def limit(self, host: HostState) -> int:
        return self.max_instances

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        limit = self.limit(host)
        if host.num_instances < limit:
            return None
        return f"{host.num_instances} instances on the host (max {limit})"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        least = min(host.num_instances for host, _ in refused)
        limits = ", ".join(map(str, sorted({self.limit(host) for host, _ in refused})))
        return f"at least {least} instances per host (max {limits})"


class AggregateNumInstancesFilter(NumInstancesFilter):
    """As NumInstancesFilter, with the limit from aggregate metadata ``max_instances_per_host``
    (the smallest number over the host's aggregates; others are ignored), else the option."""

    name = "AggregateNumInstancesFilter"

    def limit(self, host: HostState) -> int:
        return aggregate_int(host, OPTION, self.max_instances)

"""At most N I/O-heavy tasks per host: the option ``max_io_ops_per_host``, or per aggregate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from services.scheduler.filters.aggregate_utils import aggregate_int
from services.scheduler.filters.base import Filter, Refusal
from services.scheduler.filters.option_values import option_int
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

OPTION = "max_io_ops_per_host"
DEFAULT_MAX = 8


class IoOpsFilter(Filter):
    """Hosts running fewer than ``max_io_ops_per_host`` I/O-heavy tasks (builds, resizes,
    migrations, snapshots; default 8)."""

    name = "IoOpsFilter"
    resource = "io_ops"

    def __init__(self, max_io_ops_per_host: int = DEFAULT_MAX) -> None:
        self.max_io_ops = max_io_ops_per_host

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(option_int(options, OPTION, DEFAULT_MAX, minimum=0))

    def limit(self, host: HostState) -> int:
        return self.max_io_ops

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        limit = self.limit(host)
        if host.io_ops < limit:
            return None
        return f"{host.io_ops} I/O-heavy tasks running (max {limit})"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        least = min(host.io_ops for host, _ in refused)
        limits = ", ".join(map(str, sorted({self.limit(host) for host, _ in refused})))
        return f"at least {least} I/O-heavy tasks running per host (max {limits})"


class AggregateIoOpsFilter(IoOpsFilter):
    """As IoOpsFilter, with the limit from aggregate metadata ``max_io_ops_per_host`` (the
    smallest number over the host's aggregates; others are ignored), else the option."""

    name = "AggregateIoOpsFilter"

    def limit(self, host: HostState) -> int:
        return aggregate_int(host, OPTION, self.max_io_ops)

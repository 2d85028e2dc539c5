"""At most N I/O-heavy tasks per host: the option ``max_io_ops_per_host``, or per aggregate."""

from __future__ import annotations

from services.scheduler.filters.count_limit import CountLimitFilter
from services.scheduler.host_state import HostState


class IoOpsFilter(CountLimitFilter):
    """Hosts running fewer than ``max_io_ops_per_host`` I/O-heavy tasks (builds, resizes,
    migrations, snapshots; default 8)."""

    name = "IoOpsFilter"
    resource = "io_ops"
    option = "max_io_ops_per_host"
    default = 8
    on_host = "I/O-heavy tasks running"
    per_host = "I/O-heavy tasks running per host"

    @property
    def max_io_ops(self) -> int:
        return self.maximum

    def count(self, host: HostState) -> int:
        return host.io_ops


class AggregateIoOpsFilter(IoOpsFilter):
    """As IoOpsFilter, with the limit from aggregate metadata ``max_io_ops_per_host``."""

    name = "AggregateIoOpsFilter"
    per_aggregate = True

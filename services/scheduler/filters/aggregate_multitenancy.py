"""AggregateMultiTenancyIsolation: aggregates kept for the projects their metadata names."""

from __future__ import annotations

from services.scheduler.filters.aggregate_utils import split_values
from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

KEY = "filter_tenant_id"


class AggregateMultiTenancyIsolation(Filter):
    """Hosts in aggregates with ``filter_tenant_id`` or ``filter_tenant_id_<anything>`` metadata
    (comma lists of project ids) take only those projects' servers; other hosts take any."""

    name = "AggregateMultiTenancyIsolation"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if not host.aggregates:
            return None
        allowed = {
            project
            for aggregate in host.aggregates
            for key, value in aggregate.metadata.items()
            if key.startswith(KEY)
            for project in split_values([value])
        }
        if not allowed or request.spec.project_id in allowed:
            return None
        shown = ", ".join(sorted(allowed)[:10]) + (", ..." if len(allowed) > 10 else "")
        return f"aggregate allows only projects {shown}"

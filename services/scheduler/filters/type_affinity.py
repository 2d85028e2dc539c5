"""Keeping flavors apart: TypeAffinityFilter and AggregateTypeAffinityFilter, after Nova."""

from __future__ import annotations

from services.scheduler.filters.aggregate_utils import split_values
from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class TypeAffinityFilter(Filter):
    """Hosts running nothing, or only instances of the requested flavor."""

    name = "TypeAffinityFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return bool(request.spec.flavor_id)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        flavor = request.spec.flavor_id
        if not flavor:
            return None
        others = sorted({c.flavor_id or "unknown" for c in host.usage.claims.values() if c.flavor_id != flavor})
        if not others:
            return None
        return f"runs instances of other flavors ({', '.join(others[:5])}), flavor {flavor} needs a host of its own"


class AggregateTypeAffinityFilter(Filter):
    """Hosts in aggregates with ``instance_type`` metadata (a comma list of flavor names) take only
    those flavors; hosts in no such aggregate take any."""

    name = "AggregateTypeAffinityFilter"

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if not host.aggregates:
            return None
        allowed = split_values(host.aggregate_values("instance_type"))
        if not allowed or request.spec.flavor_name in allowed:
            return None
        wanted = request.spec.flavor_name or request.spec.flavor_id or "unnamed"
        return f"aggregate allows only flavors {', '.join(sorted(set(allowed)))}, not {wanted}"

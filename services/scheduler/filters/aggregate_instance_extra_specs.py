"""AggregateInstanceExtraSpecsFilter: a flavor's extra specs matched against its host's aggregate
metadata."""

from __future__ import annotations

from services.scheduler.filters import extra_specs_ops
from services.scheduler.filters.aggregate_utils import aggregate_metadata
from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

SCOPE = "aggregate_instance_extra_specs"


def _keys(request: SchedulingRequest) -> list[tuple[str, str]]:
    """(metadata key, requirement) for each extra spec this filter reads, in key order."""
    out = []
    for key, requirement in sorted(request.spec.flavor_extra_specs.items()):
        scope, sep, rest = key.partition(":")
        if not sep:
            out.append((key, requirement))
        elif scope == SCOPE:
            out.append((rest, requirement))
    return out


class AggregateInstanceExtraSpecsFilter(Filter):
    """Flavor extra specs ``aggregate_instance_extra_specs:<key>`` (and unscoped keys, with no
    ``:``) must match the metadata ``<key>`` of one of the host's aggregates, with the extra-spec
    operators; a host in no aggregate with the key fails (Nova's rules)."""

    name = "AggregateInstanceExtraSpecsFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return any(":" not in key or key.startswith(SCOPE + ":") for key in request.spec.flavor_extra_specs)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        wanted = _keys(request)
        if not wanted:
            return None
        metadata = aggregate_metadata(host)
        for key, requirement in wanted:
            values = metadata.get(key)
            needs = f"flavor needs aggregate metadata {key} {extra_specs_ops.describe(requirement)}"
            if not values:
                return f"{needs}; the host's aggregates do not set it"
            if not any(extra_specs_ops.match(value, requirement) for value in values):
                return f"{needs}; the host's aggregates have {', '.join(sorted(values))}"
        return None

"""Flavor extra specs against what the host reports, after Nova's ComputeCapabilitiesFilter."""

from __future__ import annotations

from services.scheduler.filters import extra_specs_ops
from services.scheduler.filters.base import Filter
from services.scheduler.filters.capabilities import as_text, has_capability, lookup
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

SCOPE = "capabilities"


class ComputeCapabilitiesFilter(Filter):
    """Every flavor extra spec ``capabilities:<name>`` must match the host's capability ``<name>``
    (``hypervisor_type``, ``cpu_model``, ``cpu_features``, ``vcpus``, ``trusted``, an ``extra`` key,
    a nested ``extra`` JSON key as ``cpu_info:vendor``) with the extra-spec operators. An unscoped
    key (no ``:``) is checked the same way when the host reports such a capability, else ignored.
    Other scopes are for other filters."""

    name = "ComputeCapabilitiesFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return any(":" not in key or key.startswith(SCOPE + ":") for key in request.spec.flavor_extra_specs)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        caps = host.capabilities
        for key, requirement in sorted(request.spec.flavor_extra_specs.items()):
            scope = key.split(":")
            if len(scope) == 1:
                if not has_capability(caps, key):
                    continue
            elif scope[0] == SCOPE:
                scope = scope[1:]
            else:
                continue
            needs = f"flavor needs capability {':'.join(scope)} {extra_specs_ops.describe(requirement)}"
            value = as_text(lookup(caps, scope))
            if value is None:
                return f"{needs}; host does not report it"
            if not extra_specs_ops.match(value, requirement):
                shown = ", ".join(value) if isinstance(value, list) else value
                return f"{needs}; host has {shown!r}"
        return None

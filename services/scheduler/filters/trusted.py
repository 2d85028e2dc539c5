"""TrustedFilter: a flavor that asks for a trusted host gets one."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

SPEC = "trust:trusted_host"
LEVELS = ("trusted", "untrusted")


class TrustedFilter(Filter):
    """Flavor extra spec ``trust:trusted_host``: ``trusted`` needs a host whose capability report
    marks it trusted, ``untrusted`` one that is not; any other value matches no host."""

    name = "TrustedFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return SPEC in request.spec.flavor_extra_specs

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        level = request.spec.flavor_extra_specs.get(SPEC)
        if level is None:
            return None
        wanted = level.strip().lower()
        if wanted not in LEVELS:
            return f"flavor asks for {SPEC}={level!r}; expected 'trusted' or 'untrusted'"
        actual = "trusted" if host.capabilities.trusted else "untrusted"
        return None if wanted == actual else f"flavor needs a {wanted} host, host is {actual}"

"""Running the filter chain for one request, and saying why nothing fits when nothing does.

``FilterRun`` keeps, per filter, how many hosts it looked at and which it refused with what
reason, both in the first pass over every host and when a host is checked again with fresh usage
after a lost race. ``no_valid_host`` turns that record into the NO_VALID_HOST error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.core.errors import ResourceExhausted
from services.scheduler.filters import Filter
from services.scheduler.filters.base import Refusal
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


@dataclass
class FilterOutcome:
    filter: Filter
    considered: int = 0
    refused: list[Refusal] = field(default_factory=list)


class FilterRun:
    def __init__(self, filters: Sequence[Filter], request: SchedulingRequest) -> None:
        self.request = request
        self.outcomes = [FilterOutcome(f) for f in filters]
        self.hosts_seen = 0
        # The filter that removed the last remaining host: the one to blame when nothing fits.
        self.last_filter: Filter | None = None

    def run(self, hosts: Sequence[HostState]) -> list[HostState]:
        """The hosts that pass every filter, in the order given."""
        self.hosts_seen = len(hosts)
        survivors = list(hosts)
        for outcome in self.outcomes:
            outcome.considered += len(survivors)
            if not outcome.filter.is_relevant(self.request):
                continue  # refuses no host for this request
            kept = []
            for host in survivors:
                reason = outcome.filter.host_passes(host, self.request)
                if reason is None:
                    kept.append(host)
                else:
                    outcome.refused.append((host, reason))
            if survivors and not kept:
                self.last_filter = outcome.filter
            survivors = kept
        return survivors

    def recheck(self, host: HostState) -> bool:
        """Runs the chain again on a host whose state changed (after a lost race); records a refusal."""
        for outcome in self.outcomes:
            if not outcome.filter.is_relevant(self.request):
                continue
            reason = outcome.filter.host_passes(host, self.request)
            if reason is not None:
                outcome.refused.append((host, reason))
                self.last_filter = outcome.filter
                return False
        return True

    def no_valid_host(self) -> ResourceExhausted:
        res = self.request.spec.resources
        wanted = f"{res.ram_mb} MB / {res.vcpus} vCPU / {res.disk_gb} GB"
        parts = [
            f"{o.filter.name} removed {len(o.refused)} of {o.considered} host{'s' if o.considered != 1 else ''}"
            f" ({o.filter.explain(self.request, o.refused)})"
            for o in self.outcomes
            if o.refused
        ]
        if self.hosts_seen == 0:
            parts = ["no compute host has reported its capabilities"]
        elif not parts:
            parts = ["every host that fit stopped reporting while it was being claimed"]
        metadata: dict[str, str] = {}
        if self.last_filter is not None:
            metadata["filter"] = self.last_filter.name
            if self.last_filter.resource:
                metadata["resource"] = self.last_filter.resource
        return ResourceExhausted(f"no valid host for {wanted}: {'; '.join(parts)}", metadata=metadata)

"""The ``same_host`` and ``different_host`` scheduler hints (instance ids), after Nova."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class SameHostFilter(Filter):
    """With the hint ``same_host``, only hosts holding at least one of those servers."""

    name = "SameHostFilter"
    hint_key = "same_host"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return bool(request.hint(self.hint_key))

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        wanted = request.hint(self.hint_key)
        if not wanted or not host.instance_ids.isdisjoint(wanted):
            return None
        return f"holds none of the servers in {self.hint_key} ({', '.join(wanted)})"


class DifferentHostFilter(Filter):
    """With the hint ``different_host``, only hosts holding none of those servers."""

    name = "DifferentHostFilter"
    hint_key = "different_host"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return bool(request.hint(self.hint_key))

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        wanted = request.hint(self.hint_key)
        here = sorted(host.instance_ids.intersection(wanted))
        if not here:
            return None
        return f"holds {', '.join(here)}, named in {self.hint_key}"

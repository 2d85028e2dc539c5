"""Server group policies as filters: affinity and anti-affinity, after Nova."""

from __future__ import annotations

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import Policy, SchedulingRequest

DEFAULT_MAX_PER_HOST = 1


def _group_name(request: SchedulingRequest) -> str:
    group = request.group.group if request.group is not None else None
    return (group.name or group.id) if group is not None else request.spec.server_group_id


class ServerGroupAffinityFilter(Filter):
    """An affinity group's members share one host: once any is placed, only that host."""

    name = "ServerGroupAffinityFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return request.policy == Policy.SERVER_GROUP_POLICY_AFFINITY and bool(request.group_hosts)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if request.policy != Policy.SERVER_GROUP_POLICY_AFFINITY or not request.group_hosts:
            return None
        if host.host in request.group_hosts:
            return None
        hosts = ", ".join(sorted(request.group_hosts))
        return f"affinity group {_group_name(request)} has its members on {hosts}"


class ServerGroupAntiAffinityFilter(Filter):
    """An anti-affinity group's members spread out: at most ``rules.max_server_per_host`` (default
    1) on a host. The host already holding this instance (a resize) still passes."""

    name = "ServerGroupAntiAffinityFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return request.policy == Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY and bool(request.group_hosts)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        if request.policy != Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY or request.group is None:
            return None
        here = request.group_hosts.get(host.host, 0)
        limit = request.group.group.rules.max_server_per_host or DEFAULT_MAX_PER_HOST
        if here < limit or request.spec.instance_id in host.instance_ids:
            return None
        members = "member" if here == 1 else "members"
        return f"anti-affinity group {_group_name(request)} already has {here} {members} here (max {limit})"

"""One scheduling request as filters and weighers see it: the spec plus what the scheduler
resolved for it once (its server group and where the group's members are)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servergroups_pb2

Policy = servergroups_pb2.ServerGroupPolicy


@dataclass(frozen=True)
class SchedulingRequest:
    spec: scheduler_pb2.RequestSpec
    # The server group named by spec.server_group_id, as read when the request started.
    group: state_pb2.ServerGroupRecord | None = None
    # host -> how many of the group's other members are placed there.
    group_hosts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, spec: scheduler_pb2.RequestSpec, group: state_pb2.ServerGroupRecord | None = None) -> SchedulingRequest:
        hosts: Counter[str] = Counter()
        if group is not None:
            hosts.update(h for i, h in group.placements.items() if i != spec.instance_id)
        return cls(spec, group, hosts)

    @property
    def policy(self) -> int:
        return self.group.group.policy if self.group is not None else Policy.SERVER_GROUP_POLICY_UNSPECIFIED

    def hint(self, name: str) -> list[str]:
        """A scheduler hint as a list (comma-separated values); [] when absent."""
        raw = self.spec.scheduler_hints.get(name, "")
        return [v.strip() for v in raw.split(",") if v.strip()]

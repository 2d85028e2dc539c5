"""Soft server group policies as weighers, after Nova's ``affinity.py`` weighers."""

from __future__ import annotations

import logging
from typing import ClassVar

from services.scheduler.host_state import HostState
from services.scheduler.request import Policy, SchedulingRequest
from services.scheduler.weighers.base import Weigher

log = logging.getLogger(__name__)


class _SoftGroupWeigher(Weigher):
    policy: ClassVar[int]
    sign: ClassVar[float]

    def __init__(self, multiplier: float | None = None) -> None:
        super().__init__(multiplier)
        if self.multiplier < 0:
            log.warning(
                "%s=%s: only a positive value is meaningful; a negative one reverses the policy",
                self.multiplier_option,
                self.multiplier,
            )

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return request.policy == self.policy and bool(request.group_hosts)

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        if request.policy != self.policy:
            return 0.0
        return self.sign * request.group_hosts.get(host.host, 0)


class ServerGroupSoftAffinityWeigher(_SoftGroupWeigher):
    """soft-affinity groups: hosts with more of the group's members first."""

    name = "ServerGroupSoftAffinityWeigher"
    multiplier_option = "soft_affinity_weight_multiplier"
    policy = Policy.SERVER_GROUP_POLICY_SOFT_AFFINITY
    sign = 1.0


class ServerGroupSoftAntiAffinityWeigher(_SoftGroupWeigher):
    """soft-anti-affinity groups: hosts with fewer of the group's members first."""

    name = "ServerGroupSoftAntiAffinityWeigher"
    multiplier_option = "soft_anti_affinity_weight_multiplier"
    policy = Policy.SERVER_GROUP_POLICY_SOFT_ANTI_AFFINITY
    sign = -1.0

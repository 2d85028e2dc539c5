"""Keeping some images on some hosts, after Nova's IsolatedHostsFilter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from services.scheduler.filters.base import Filter
from services.scheduler.filters.option_values import option_bool, option_list
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class IsolatedHostsFilter(Filter):
    """Images in ``isolated_images`` run only on ``isolated_hosts``; with
    ``restrict_isolated_hosts_to_isolated_images`` (default true) those hosts run nothing else.

    ============  ==========================  =================  ================
    restrict      host                        isolated image     other image
    ============  ==========================  =================  ================
    true          isolated                    passes             refused
    true          not isolated                refused            passes
    false         isolated                    passes             passes
    false         not isolated                refused            passes
    ============  ==========================  =================  ================

    With no isolated images, a restricting filter keeps every request off the isolated hosts.
    """

    name = "IsolatedHostsFilter"

    def __init__(self, hosts: Iterable[str] = (), images: Iterable[str] = (), restrict: bool = True) -> None:
        self.hosts = frozenset(hosts)
        self.images = frozenset(images)
        self.restrict = restrict

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(
            option_list(options, "isolated_hosts"),
            option_list(options, "isolated_images"),
            option_bool(options, "restrict_isolated_hosts_to_isolated_images", True),
        )

    def is_relevant(self, request: SchedulingRequest) -> bool:
        if not self.images:
            return self.restrict and bool(self.hosts)
        return True

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        host_isolated = host.host in self.hosts
        image = request.spec.image_id
        image_isolated = bool(image) and image in self.images
        if image_isolated and not host_isolated:
            return f"image {image} runs only on the isolated hosts"
        if host_isolated and not image_isolated and self.restrict:
            return "isolated host: runs only the isolated images"
        return None

"""Host filters: the registry of every filter by name, and building the configured chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.scheduler.filters.aggregate_instance_extra_specs import AggregateInstanceExtraSpecsFilter
from services.scheduler.filters.aggregate_multitenancy import AggregateMultiTenancyIsolation
from services.scheduler.filters.all_hosts import AllHostsFilter
from services.scheduler.filters.availability_zone import AvailabilityZoneFilter
from services.scheduler.filters.base import Filter, ResourceFilter
from services.scheduler.filters.compute import ComputeFilter
from services.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from services.scheduler.filters.core import CoreFilter
from services.scheduler.filters.disk import DiskFilter
from services.scheduler.filters.image_properties import ImagePropertiesFilter
from services.scheduler.filters.io_ops import AggregateIoOpsFilter, IoOpsFilter
from services.scheduler.filters.isolated_hosts import IsolatedHostsFilter
from services.scheduler.filters.json_filter import JsonFilter
from services.scheduler.filters.num_instances import AggregateNumInstancesFilter, NumInstancesFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.filters.retry import RetryFilter
from services.scheduler.filters.same_host import DifferentHostFilter, SameHostFilter
from services.scheduler.filters.server_group import ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter
from services.scheduler.filters.trusted import TrustedFilter
from services.scheduler.filters.type_affinity import AggregateTypeAffinityFilter, TypeAffinityFilter
from services.scheduler.known_names import check_known

FILTERS: dict[str, type[Filter]] = {
    cls.name: cls
    for cls in (
        AggregateInstanceExtraSpecsFilter,
        AggregateIoOpsFilter,
        AggregateMultiTenancyIsolation,
        AggregateNumInstancesFilter,
        AggregateTypeAffinityFilter,
        AllHostsFilter,
        AvailabilityZoneFilter,
        ComputeCapabilitiesFilter,
        ComputeFilter,
        CoreFilter,
        DifferentHostFilter,
        DiskFilter,
        ImagePropertiesFilter,
        IoOpsFilter,
        IsolatedHostsFilter,
        JsonFilter,
        NumInstancesFilter,
        RamFilter,
        RetryFilter,
        SameHostFilter,
        ServerGroupAffinityFilter,
        ServerGroupAntiAffinityFilter,
        TrustedFilter,
        TypeAffinityFilter,
    )
}
# Nova's name has no "Filter" suffix; accept the spelling people guess too.
FILTERS["AggregateMultiTenancyIsolationFilter"] = AggregateMultiTenancyIsolation


def build_filters(names: Sequence[str], options: Mapping[str, Any] | None = None) -> list[Filter]:
    """The filters named, in order, each configured from ``options`` (the scheduler options);
    ValueError naming the unknown filters and the known ones, or the bad option."""
    check_known("filter", names, FILTERS)
    return [FILTERS[name].from_options(options or {}) for name in names]


__all__ = ["FILTERS", "Filter", "ResourceFilter", "build_filters"]

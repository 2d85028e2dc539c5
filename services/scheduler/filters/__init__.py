"""Host filters: the registry of every filter by name, and building the configured chain."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.availability_zone import AvailabilityZoneFilter
from services.scheduler.filters.base import Filter, ResourceFilter
from services.scheduler.filters.compute import ComputeFilter
from services.scheduler.filters.core import CoreFilter
from services.scheduler.filters.disk import DiskFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.filters.retry import RetryFilter

FILTERS: dict[str, type[Filter]] = {
    cls.name: cls
    for cls in (
        AvailabilityZoneFilter,
        ComputeFilter,
        CoreFilter,
        DiskFilter,
        RamFilter,
        RetryFilter,
    )
}


def build_filters(names: Sequence[str]) -> list[Filter]:
    """The filters named, in order; ValueError naming the unknown ones and the known ones."""
    unknown = [name for name in names if name not in FILTERS]
    if unknown:
        raise ValueError(
            f"unknown scheduler filter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(FILTERS))}"
        )
    return [FILTERS[name]() for name in names]


__all__ = ["FILTERS", "Filter", "ResourceFilter", "build_filters"]

"""Host weighers: the registry of every weigher by name, and building the configured set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.scheduler.known_names import check_known
from services.scheduler.weighers.base import WeighedHost, Weigher, normalize, weigh_hosts
from services.scheduler.weighers.build_failure import BuildFailureWeigher
from services.scheduler.weighers.cpu import CPUWeigher
from services.scheduler.weighers.disk import DiskWeigher
from services.scheduler.weighers.io_ops import IoOpsWeigher
from services.scheduler.weighers.num_instances import NumInstancesWeigher
from services.scheduler.weighers.ram import RamWeigher
from services.scheduler.weighers.server_group import ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher

WEIGHERS: dict[str, type[Weigher]] = {
    cls.name: cls
    for cls in (
        BuildFailureWeigher,
        CPUWeigher,
        DiskWeigher,
        IoOpsWeigher,
        NumInstancesWeigher,
        RamWeigher,
        ServerGroupSoftAffinityWeigher,
        ServerGroupSoftAntiAffinityWeigher,
    )
}


def build_weighers(
    names: Sequence[str], multipliers: Mapping[str, float], options: Mapping[str, Any] | None = None
) -> list[Weigher]:
    """The weighers named, each configured from ``options`` (the scheduler options). A weigher's
    multiplier is ``options["weight_multipliers"][name]``, else ``multipliers[name]``, else its
    option (``cpu_weight_multiplier``, ...), else its default. ValueError on an unknown name or a
    bad value."""
    merged = dict(options or {})
    by_name = merged.get("weight_multipliers") or {}
    if not isinstance(by_name, Mapping):
        raise ValueError(f"weight_multipliers must map weigher names to numbers, not {by_name!r}")
    by_name = {**multipliers, **by_name}
    check_known("weigher", dict.fromkeys([*names, *by_name]), WEIGHERS)
    merged["weight_multipliers"] = by_name
    return [WEIGHERS[name].from_options(merged) for name in names]


__all__ = ["WEIGHERS", "WeighedHost", "Weigher", "build_weighers", "normalize", "weigh_hosts"]

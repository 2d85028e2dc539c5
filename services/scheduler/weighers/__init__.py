"""Host weighers: the registry of every weigher by name, and building the configured set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.scheduler.weighers.base import WeighedHost, Weigher, normalize, weigh_hosts
from services.scheduler.weighers.ram import RamWeigher

WEIGHERS: dict[str, type[Weigher]] = {cls.name: cls for cls in (RamWeigher,)}


def build_weighers(names: Sequence[str], multipliers: Mapping[str, float]) -> list[Weigher]:
    """The weighers named, each with its multiplier (default 1.0); ValueError on unknown names."""
    unknown = [name for name in dict.fromkeys([*names, *multipliers]) if name not in WEIGHERS]
    if unknown:
        raise ValueError(
            f"unknown scheduler weigher(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(WEIGHERS))}"
        )
    return [WEIGHERS[name](multipliers.get(name, 1.0)) for name in names]


__all__ = ["WEIGHERS", "WeighedHost", "Weigher", "build_weighers", "normalize", "weigh_hosts"]

"""The filter and weigher chains the scheduler runs, built from an options mapping: ``build_chains``,
and ``EngineConfig``, one generation of options with its chains (and the chance driver's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.scheduler.filters import FILTERS, Filter
from services.scheduler.known_names import check_known
from services.scheduler.weighers import WEIGHERS, Weigher

# The chance driver: a random host among those that are up, not already tried, and have room.
CHANCE_FILTERS = ["ComputeFilter", "RetryFilter", "RamFilter", "CoreFilter", "DiskFilter"]


@dataclass(frozen=True)
class EngineConfig:
    """One generation of options and the chains built from them."""

    options: Mapping[str, Any]
    filters: list[Filter]
    weighers: list[Weigher]
    driver: str = "filter"
    host_subset_size: int = 1
    # Where the options came from, for the log ("settings", "settings + /etc/...json").
    source: str = "settings"
    generation: int = 0
    chance_filters: list[Filter] = field(default_factory=list)


def build_chains(options: Mapping[str, Any]) -> tuple[list[Filter], list[Weigher]]:
    """The enabled filters and weighers, each from ``from_options``; ValueError naming the problem."""
    filter_names, weigher_names = list(options.get("enabled_filters", ())), list(options.get("weighers", ()))
    check_known("filter", filter_names, FILTERS)
    check_known("weigher", weigher_names, WEIGHERS)
    filters: list[Filter] = []
    weighers: list[Weigher] = []
    name = ""
    try:
        for name in filter_names:
            filters.append(FILTERS[name].from_options(options))
        for name in weigher_names:
            weighers.append(WEIGHERS[name].from_options(options))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from exc
    return filters, weighers


def engine_config(options: Mapping[str, Any], *, source: str = "settings", generation: int = 0) -> EngineConfig:
    """Chains for the options; ValueError on an unknown name or a bad value."""
    filters, weighers = build_chains(options)
    chance, _ = build_chains({**options, "enabled_filters": CHANCE_FILTERS, "weighers": []})
    return EngineConfig(
        options=dict(options),
        filters=filters,
        weighers=weighers,
        driver=str(options.get("scheduler_driver", "filter")),
        host_subset_size=int(options.get("host_subset_size", 1)),
        source=source,
        generation=generation,
        chance_filters=chance,
    )

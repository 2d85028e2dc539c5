"""The scheduler options (``SchedulerOptions``): what the filter and weigher chains are built from,
checked (known names, good values, chains that build), with Nova's default chains. The scheduler's
settings hold them; the watched options file may override them while it runs (options.py)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.core.config import split_list
from services.scheduler.chains import build_chains
from services.scheduler.filters import FILTERS
from services.scheduler.known_names import check_known
from services.scheduler.weighers import WEIGHERS

# Nova's defaults (nova.conf [filter_scheduler] enabled_filters), plus the resource filters Nova
# moved to Placement and the RetryFilter for builds that failed on a host.
DEFAULT_FILTERS = [
    "RetryFilter",
    "AvailabilityZoneFilter",
    "ComputeFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
]
# Nova's all_weighers, in its order of definition.
DEFAULT_WEIGHERS = [
    "RamWeigher",
    "CPUWeigher",
    "DiskWeigher",
    "IoOpsWeigher",
    "NumInstancesWeigher",
    "ServerGroupSoftAffinityWeigher",
    "ServerGroupSoftAntiAffinityWeigher",
    "BuildFailureWeigher",
]


def split_multipliers(value: Any) -> Any:
    """``RamWeigher=-1.0,Other=2`` (from a flag or the environment) -> a dict; dicts pass through."""
    if not isinstance(value, str):
        return value
    out: dict[str, str] = {}
    for part in split_list(value):
        name, sep, number = part.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=MULTIPLIER, got {part!r}")
        out[name.strip()] = number.strip()
    return out


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class SchedulerOptions(BaseModel):
    """What filters and weighers are built from; the options file may set any of these (and any
    weigher's ``<x>_weight_multiplier``), merged over the settings."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    # "filter": filters then weighers; "chance": a random host among those with room.
    scheduler_driver: Literal["filter", "chance"] = "filter"
    # Filters run in this order, each on the hosts the previous ones kept (names from filters/).
    enabled_filters: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FILTERS))
    # Weighers summed over the hosts that passed (names from weighers/).
    weighers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_WEIGHERS))
    # Multiplier per weigher name; wins over the weigher's own option (``ram_weight_multiplier``, ...).
    weight_multipliers: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    # Capacity = total * ratio - reserved; an aggregate's metadata key of the same name overrides.
    cpu_allocation_ratio: float = Field(default=4.0, gt=0)
    ram_allocation_ratio: float = Field(default=1.0, gt=0)
    disk_allocation_ratio: float = Field(default=1.0, gt=0)
    # Pick at random among the best N weighed hosts (1: always the best).
    host_subset_size: int = Field(default=1, ge=1)
    max_instances_per_host: int = Field(default=50, ge=1)
    max_io_ops_per_host: int = Field(default=8, ge=0)
    isolated_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    isolated_images: Annotated[list[str], NoDecode] = Field(default_factory=list)
    restrict_isolated_hosts_to_isolated_images: bool = True
    build_failure_weight_multiplier: float = 1_000_000.0

    _split_lists = field_validator("enabled_filters", "weighers", "isolated_hosts", "isolated_images", mode="before")(
        split_list
    )
    _split_multipliers = field_validator("weight_multipliers", mode="before")(split_multipliers)
    _finite_numbers = field_validator(
        "cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio", "build_failure_weight_multiplier"
    )(_finite)

    @field_validator("enabled_filters")
    @classmethod
    def _known_filters(cls, names: list[str]) -> list[str]:
        check_known("filter", names, FILTERS)
        return names

    @field_validator("weighers")
    @classmethod
    def _known_weigher_names(cls, names: list[str]) -> list[str]:
        return _known_weighers(names)

    @field_validator("weight_multipliers")
    @classmethod
    def _known_multipliers(cls, multipliers: dict[str, float]) -> dict[str, float]:
        _known_weighers(list(multipliers))
        for name, value in multipliers.items():
            if not math.isfinite(value):
                raise ValueError(f"the multiplier of {name} must be a finite number")
        return multipliers

    @model_validator(mode="after")
    def _chains_build(self) -> SchedulerOptions:
        """Every filter and weigher accepts these options (a bad value says which)."""
        build_chains(self.option_values())
        return self

    def option_values(self) -> dict[str, Any]:
        """The options as the plain mapping filters and weighers are built from."""
        return {name: getattr(self, name) for name in SchedulerOptions.model_fields}


def _known_weighers(names: list[str]) -> list[str]:
    check_known("weigher", dict.fromkeys(names), WEIGHERS)
    return names

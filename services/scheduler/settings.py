from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.core.config import CommonSettings, split_list

DEFAULT_FILTERS = [
    "RetryFilter",
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
]
DEFAULT_WEIGHERS = ["RamWeigher"]


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


class SchedulerSettings(CommonSettings):
    binary: ClassVar[str] = "scheduler"

    # Unclaimed alternates returned beside the chosen host.
    alternates: int = Field(default=2, ge=0, le=10)
    # Filters run in this order, each on the hosts the previous ones kept (names from filters/).
    enabled_filters: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FILTERS))
    # Weighers summed over the hosts that passed (names from weighers/).
    weighers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_WEIGHERS))
    # Multiplier per weigher name (default 1.0); negative reverses a weigher (e.g. stack instead of spread).
    weight_multipliers: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)

    _split_lists = field_validator("enabled_filters", "weighers", mode="before")(split_list)
    _split_multipliers = field_validator("weight_multipliers", mode="before")(split_multipliers)

    @field_validator("enabled_filters")
    @classmethod
    def _known_filters(cls, names: list[str]) -> list[str]:
        from services.scheduler.filters import build_filters

        build_filters(names)  # ValueError naming the unknown ones
        return names

    @field_validator("weight_multipliers")
    @classmethod
    def _known_weighers(cls, multipliers: dict[str, float]) -> dict[str, float]:
        from services.scheduler.weighers import build_weighers

        build_weighers(list(multipliers), multipliers)
        return multipliers

    @field_validator("weighers")
    @classmethod
    def _known_weigher_names(cls, names: list[str]) -> list[str]:
        from services.scheduler.weighers import build_weighers

        build_weighers(names, {})
        return names

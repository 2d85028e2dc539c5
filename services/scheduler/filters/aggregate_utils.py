"""Reading a host's aggregate metadata the way Nova's ``nova/scheduler/filters/utils.py`` does."""

from __future__ import annotations

import math

from services.scheduler.host_state import HostState


def aggregate_metadata(host: HostState) -> dict[str, set[str]]:
    """Every metadata key over the host's aggregates -> the set of its values, comma lists split."""
    metadata: dict[str, set[str]] = {}
    for aggregate in host.aggregates:
        for key, value in aggregate.metadata.items():
            metadata.setdefault(key, set()).update(v.strip() for v in value.split(","))
    return metadata


def split_values(values: list[str]) -> list[str]:
    """Comma-separated metadata values, flattened and stripped, empties dropped."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def aggregate_int(host: HostState, key: str, default: int) -> int:
    """The smallest number set for ``key`` by the host's aggregates, as an integer (values that are
    not finite numbers are ignored, as ``HostState.aggregate_number`` does); else ``default``."""
    if not host.aggregates:
        return default
    value = host.aggregate_number(key)
    return default if value is None or not math.isfinite(value) else int(value)

"""Looking up one of a host's reported capabilities by name, for ComputeCapabilitiesFilter and
JsonFilter.

A name is a path: its first part is a field of ``HostCapabilities`` (``hypervisor_type``,
``cpu_features``, ``vcpus``, ...) or a key of its free-form ``extra`` map; the longest ``extra`` key
wins, so ``cpu_info:vendor`` may be one key. The remaining parts walk into the value when it is a
JSON object (``extra["cpu_info"] = '{"vendor": "Intel"}'`` answers ``cpu_info:vendor``).
An unreported value (empty string, zero version) is None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from stratus.state.v1 import state_pb2

Caps = state_pb2.HostCapabilities

FIELDS: dict[str, Callable[[Caps], Any]] = {
    "hypervisor_type": lambda c: c.hypervisor_type or None,
    "hypervisor_version": lambda c: c.hypervisor_version or None,
    "cpu_model": lambda c: c.cpu_model or None,
    "architecture": lambda c: c.architecture or None,
    "cpu_features": lambda c: list(c.cpu_features),
    "vm_modes": lambda c: list(c.vm_modes),
    "traits": lambda c: list(c.traits),
    "availability_zone": lambda c: c.availability_zone or None,
    "vcpus": lambda c: c.vcpus,
    "ram_mb": lambda c: c.ram_mb,
    "disk_gb": lambda c: c.disk_gb,
    "trusted": lambda c: c.trusted,
    "extra": lambda c: dict(c.extra),
}


def has_capability(caps: Caps, name: str) -> bool:
    """Whether the name is a capability the host could report (a field or an ``extra`` key)."""
    return name in FIELDS or name in caps.extra


def lookup(caps: Caps, path: Sequence[str]) -> Any:
    """The value at the path, or None when the host does not report it."""
    if not path:
        return None
    value: Any = None
    rest: Sequence[str] = ()
    for end in range(len(path), 0, -1):
        key = ":".join(path[:end])
        if key in caps.extra:
            value, rest = caps.extra[key], path[end:]
            break
    else:
        getter = FIELDS.get(path[0])
        if getter is None:
            return None
        value, rest = getter(caps), path[1:]
    for part in rest:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def as_text(value: Any) -> str | list[str] | None:
    """A capability as extra-spec operators compare it: text, a list of texts for a list, None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)

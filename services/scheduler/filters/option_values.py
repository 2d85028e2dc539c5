"""Reading filter and weigher settings out of the scheduler options mapping, strictly.

The options come from a JSON file an operator edits; a value of the wrong type is a bad setting,
and a bad setting must stop the scheduler (or the reload) with a message naming the key, never be
guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def option_int(options: Mapping[str, Any], key: str, default: int, *, minimum: int | None = None) -> int:
    """An integer option (JSON number without a fraction, or a string of digits)."""
    value = options.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"scheduler option {key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"scheduler option {key} must be at least {minimum}, got {value}")
    return value


def option_float(options: Mapping[str, Any], key: str, default: float) -> float:
    """A number option (JSON number, or a string holding one)."""
    value = options.get(key, default)
    if isinstance(value, bool):
        raise ValueError(f"scheduler option {key} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"scheduler option {key} must be a number, got {value!r}")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def option_bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean option (JSON true/false, or "true"/"false", "yes"/"no", "on"/"off", "1"/"0")."""
    value = options.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"scheduler option {key} must be true or false, got {value!r}")


def option_list(options: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of names (a JSON list of strings, or one comma-separated string); () when absent."""
    value = options.get(key, ())
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError(f"scheduler option {key} must be a list of strings, got {value!r}")

"""The fake host's size: the ``fake_host`` text (``vcpus=16,ram_mb=32768,disk_gb=1000``) and what
it parses to."""

from __future__ import annotations

from dataclasses import dataclass

FAKE_HOST_FIELDS = ("vcpus", "ram_mb", "disk_gb")


@dataclass(frozen=True, slots=True)
class FakeHostSize:
    vcpus: int
    ram_mb: int
    disk_gb: int


def _parse_part(text: str, part: str, seen: dict[str, int]) -> tuple[str, int]:
    name, sep, raw = (s.strip() for s in part.partition("="))
    if not sep or not name:
        raise ValueError(f"fake host {text!r}: {part!r} is not name=value")
    if name not in FAKE_HOST_FIELDS:
        raise ValueError(f"fake host {text!r}: unknown field {name!r}; expected {', '.join(FAKE_HOST_FIELDS)}")
    if name in seen:
        raise ValueError(f"fake host {text!r}: {name!r} given twice")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"fake host {text!r}: {part!r}: {raw!r} is not a whole number") from None
    if value <= 0:
        raise ValueError(f"fake host {text!r}: {part!r}: {name} must be positive")
    return name, value


def parse_fake_host(text: str) -> FakeHostSize:
    """``"vcpus=16,ram_mb=32768,disk_gb=1000"`` -> FakeHostSize; ValueError naming the bad part."""
    values: dict[str, int] = {}
    for part in text.split(","):
        name, value = _parse_part(text, part.strip(), values)
        values[name] = value
    missing = [name for name in FAKE_HOST_FIELDS if name not in values]
    if missing:
        raise ValueError(f"fake host {text!r}: missing {', '.join(missing)}")
    return FakeHostSize(**values)

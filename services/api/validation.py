"""Request validation: every problem found, each naming its field."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.core.errors import InvalidArgument

NAME_MAX = 255
META_MAX_ITEMS = 128
META_KEY_MAX = 255
META_VALUE_MAX = 1024
USER_DATA_MAX = 64 * 1024
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
ID_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Violations:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, why: str) -> None:
        self.items.append((field, why))

    def required(self, field: str, value: str) -> None:
        if not value.strip():
            self.add(field, "is required")

    def name(self, field: str, value: str) -> None:
        if not value.strip():
            self.add(field, "is required")
        elif len(value) > NAME_MAX:
            self.add(field, f"must be at most {NAME_MAX} characters")
        elif CONTROL.search(value):
            self.add(field, "must not contain control characters")

    def pattern(self, field: str, value: str, regex: re.Pattern[str], what: str) -> None:
        if value and not regex.match(value):
            self.add(field, f"must be {what}")

    def int_range(self, field: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}, got {value}")

    def mapping(self, field: str, values: Mapping[str, str]) -> None:
        if len(values) > META_MAX_ITEMS:
            self.add(field, f"must have at most {META_MAX_ITEMS} entries")
        for key, value in values.items():
            if not key or len(key) > META_KEY_MAX:
                self.add(f"{field}[{key!r}]", f"keys must be 1 to {META_KEY_MAX} characters")
            if len(value) > META_VALUE_MAX:
                self.add(f"{field}[{key!r}]", f"values must be at most {META_VALUE_MAX} characters")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def page_size(value: int, default: int = 50, maximum: int = 1000) -> int:
    if value < 0:
        raise InvalidArgument([("page_size", "must not be negative")])
    return min(value or default, maximum)

"""Request validation: every problem found, each naming its field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.core.errors import InvalidArgument, shorten

NAME_MAX = 255
META_MAX_ITEMS = 128
META_KEY_MAX = 255
META_VALUE_MAX = 1024
USER_DATA_MAX = 64 * 1024
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
ID_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ID_MAX = 128
REASON_MAX = 255
FILTER_MAX = 1024
PAGE_TOKEN_MAX = 1024
REPEATED_MAX = 1000
PUBLIC_KEY_MAX = 16 * 1024  # an OpenSSH public key line (an RSA 16384-bit key is ~2.8 KiB)
# Strings with their own bound; any other string is at most NAME_MAX.
STRING_LIMITS = {"filter": FILTER_MAX, "page_token": PAGE_TOKEN_MAX, "disabled_reason": REASON_MAX,
                 "public_key": PUBLIC_KEY_MAX}  # fmt: skip
# Fields that take an id or a name (a flavor or an image): a name's bounds, not the id pattern.
ID_OR_NAME_FIELDS = frozenset({"flavor_id", "image_id"})
ID_OR_NAME_FILES = ("stratus/v1/flavors.proto", "stratus/v1/images.proto")
UNREADABLE = frozenset({"Cc", "Cf"})  # control and format (bidi overrides such as U+202E) characters


def unreadable(value: str) -> str | None:
    """The first control or format character in ``value``, as U+XXXX, or None."""
    for ch in value:
        if unicodedata.category(ch) in UNREADABLE:
            return f"U+{ord(ch):04X}"
    return None


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
        else:
            self.readable(field, value)

    def readable(self, field: str, value: str) -> None:
        bad = unreadable(value)
        if bad:
            self.add(field, f"must not contain control or format characters (found {bad})")

    def text(self, field: str, value: str, limit: int = NAME_MAX) -> None:
        """An optional string a person reads: at most ``limit`` characters, nothing unreadable."""
        if len(value) > limit:
            self.add(field, f"must be at most {limit} characters, got {len(value)}")
        else:
            self.readable(field, value)

    def identifier(self, field: str, value: str, regex: re.Pattern[str] = ID_CHARS) -> None:
        """An optional id: at most ID_MAX letters, digits, '.', '_' or '-' (':' too for request ids)."""
        if len(value) > ID_MAX:
            self.add(field, f"must be at most {ID_MAX} characters, got {len(value)}")
        elif value and not regex.match(value):
            colon = ", ':'" if regex is REQUEST_ID else ""
            self.add(field, f"must be an id: letters, digits, '.', '_'{colon} or '-'")

    def pattern(self, field: str, value: str, regex: re.Pattern[str], what: str) -> None:
        if len(value) > ID_MAX:
            self.add(field, f"must be at most {ID_MAX} characters, got {len(value)}")
        elif value and not regex.match(value):
            self.add(field, f"must be {what}")

    def int_range(self, field: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}, got {value}")

    def mapping(self, field: str, values: Mapping[str, str]) -> None:
        if len(values) > META_MAX_ITEMS:
            self.add(field, f"must have at most {META_MAX_ITEMS} entries")
            return
        for key, value in values.items():
            where = f"{field}[{shorten(key)!r}]"
            if not key or len(key) > META_KEY_MAX:
                self.add(where, f"keys must be 1 to {META_KEY_MAX} characters")
            else:
                self.readable(where, key)
            if len(value) > META_VALUE_MAX:
                self.add(where, f"values must be at most {META_VALUE_MAX} characters")
            else:
                self.readable(where, value)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def page_size(value: int, default: int = 50, maximum: int = 1000) -> int:
    if value < 0:
        raise InvalidArgument([("page_size", "must not be negative")])
    return min(value or default, maximum)


def check_request(request: Message) -> None:
    """The bounds every public request keeps, whatever its method: strings (names, reasons, zones,
    hosts: at most NAME_MAX and readable; ids: the id pattern; filters and page tokens longer),
    maps (as metadata), repeated fields and enum values (a defined one; 0, UNSPECIFIED, is the
    default). Methods check what is required and what means something on top of this."""
    v = Violations()
    _check_message(v, request, "")
    v.raise_if_any()


def _check_message(v: Violations, msg: Message, prefix: str) -> None:
    for field, value in msg.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _check_map(v, field, value, path)
        elif field.is_repeated:
            if len(value) > REPEATED_MAX:
                v.add(path, f"must have at most {REPEATED_MAX} entries")
                continue
            for i, item in enumerate(value):
                _check_value(v, field, item, f"{path}[{i}]", msg)
        else:
            _check_value(v, field, value, path, msg)


def _check_map(v: Violations, field: FieldDescriptor, value: Mapping[str, object], path: str) -> None:
    entry = field.message_type
    assert entry is not None
    value_field = entry.fields_by_name["value"]
    if value_field.type == FieldDescriptor.TYPE_STRING:
        v.mapping(path, value)  # type: ignore[arg-type]
        return
    if len(value) > META_MAX_ITEMS:
        v.add(path, f"must have at most {META_MAX_ITEMS} entries")
        return
    for key, item in value.items():
        where = f"{path}[{shorten(str(key))!r}]"
        if isinstance(key, str):
            v.text(where, key, META_KEY_MAX)
        _check_value(v, value_field, item, where, None)


def _check_value(v: Violations, field: FieldDescriptor, value: object, path: str, owner: Message | None) -> None:
    if isinstance(value, Message):
        _check_message(v, value, f"{path}.")
    elif field.enum_type is not None:
        if not isinstance(value, int) or value not in field.enum_type.values_by_number:
            v.add(path, f"{value} is not a {field.enum_type.name} value")
    elif isinstance(value, str):
        _check_string(v, field.name, value, path, owner)


def _check_string(v: Violations, name: str, value: str, path: str, owner: Message | None) -> None:
    if name == "request_id":
        v.identifier(path, value, REQUEST_ID)
    elif _is_id(name, owner):
        v.identifier(path, value)
    else:
        v.text(path, value, STRING_LIMITS.get(name, NAME_MAX))


def _is_id(name: str, owner: Message | None) -> bool:
    if name in ID_OR_NAME_FIELDS or not (name == "id" or name.endswith("_id")):
        return False
    return not (name == "id" and owner is not None and owner.DESCRIPTOR.file.name in ID_OR_NAME_FILES)

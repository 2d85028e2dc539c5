"""ListServers ``filter``: ``field=value`` terms joined by AND (AIP-160's simplest subset).

An enum field (``status``, ``vm_state``) takes one of its words (``ACTIVE``, any case); any other
word is refused, naming the valid ones, rather than matching nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

from google.protobuf.descriptor import EnumDescriptor

from services.core.errors import InvalidArgument, shorten
from services.core.states import name_of
from stratus.v1 import servers_pb2

Server = servers_pb2.Server
FIELDS: dict[str, Callable[[Server], str]] = {
    "name": lambda s: s.name,
    "status": lambda s: name_of(servers_pb2.ServerStatus, s.status, "SERVER_STATUS_"),
    "vm_state": lambda s: name_of(servers_pb2.VmState, s.vm_state, "VM_STATE_"),
    "host": lambda s: s.host,
    "flavor_id": lambda s: s.flavor_id,
    "image_id": lambda s: s.image_id,
    "availability_zone": lambda s: s.availability_zone,
    "project_id": lambda s: s.project_id,
    "id": lambda s: s.id,
}
TERM = re.compile(r'^\s*([a-z_]+)\s*=\s*(?:"([^"]*)"|(\S+))\s*$')


def enum_words(enum: EnumDescriptor, prefix: str) -> tuple[str, ...]:
    """``(ServerStatus, "SERVER_STATUS_")`` -> ``("BUILD", "ACTIVE", ...)``, without UNSPECIFIED."""
    return tuple(v.name.removeprefix(prefix) for v in enum.values if v.number != 0)


ENUM_WORDS: dict[str, tuple[str, ...]] = {
    "status": enum_words(servers_pb2.ServerStatus.DESCRIPTOR, "SERVER_STATUS_"),
    "vm_state": enum_words(servers_pb2.VmState.DESCRIPTOR, "VM_STATE_"),
}


def enum_value(field: str, value: str) -> str:
    """The word ``value`` names (case-insensitive); an unknown word is INVALID_ARGUMENT."""
    word = value.upper()
    if word not in ENUM_WORDS[field]:
        known = ", ".join(ENUM_WORDS[field])
        raise InvalidArgument([("filter", f"unknown {field} {shorten(value)!r}; known: {known}")])
    return word


def parse(expr: str) -> Callable[[Server], bool]:
    if not expr.strip():
        return lambda _s: True
    terms: list[tuple[Callable[[Server], str], str]] = []
    for part in re.split(r"\s+AND\s+", expr.strip()):
        match = TERM.match(part)
        if not match:
            raise InvalidArgument([("filter", f"cannot parse {shorten(part)!r}: use field=value terms joined by AND")])
        field, quoted, bare = match.groups()
        if field not in FIELDS:
            raise InvalidArgument([("filter", f"unknown field {shorten(field)!r}; known: {', '.join(sorted(FIELDS))}")])
        value = quoted if quoted is not None else bare
        terms.append((FIELDS[field], enum_value(field, value) if field in ENUM_WORDS else value))
    return lambda s: all(get(s) == want for get, want in terms)

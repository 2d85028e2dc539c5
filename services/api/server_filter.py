"""ListServers ``filter``: ``field=value`` terms joined by AND (AIP-160's simplest subset)."""

from __future__ import annotations

import re
from collections.abc import Callable

from services.core.errors import InvalidArgument
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


def parse(expr: str) -> Callable[[Server], bool]:
    if not expr.strip():
        return lambda _s: True
    terms: list[tuple[Callable[[Server], str], str]] = []
    for part in re.split(r"\s+AND\s+", expr.strip()):
        match = TERM.match(part)
        if not match:
            raise InvalidArgument([("filter", f"cannot parse {part!r}: use field=value terms joined by AND")])
        field, quoted, bare = match.groups()
        if field not in FIELDS:
            raise InvalidArgument([("filter", f"unknown field {field!r}; known: {', '.join(sorted(FIELDS))}")])
        terms.append((FIELDS[field], quoted if quoted is not None else bare))
    return lambda s: all(get(s) == want for get, want in terms)

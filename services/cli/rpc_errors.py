"""gRPC errors as a user reads them: ``error: INVALID_ARGUMENT: <message>`` and one line per bad field."""

from __future__ import annotations

from typing import Any

from google.rpc import error_details_pb2, status_pb2

HINTS = {
    "UNAUTHENTICATED": "hint: pass --token or set STRATUS_TOKEN (a stack's tokens are in its stack.json)",
    "PERMISSION_DENIED": "hint: this needs another role; the admin token of `stratus up` is in stack.json",
}


def status_of(err: Any) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` carried in an error's trailers, if any."""
    from grpc_status import rpc_status

    try:
        status: status_pb2.Status | None = rpc_status.from_call(err)
    except ValueError:  # trailers disagree with the call's code or message
        return None
    return status


def field_violations(status: status_pb2.Status | None) -> list[tuple[str, str]]:
    if status is None:
        return []
    out: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


def describe(code: str, message: str, status: status_pb2.Status | None) -> list[str]:
    lines = [f"error: {code}: {message}" if message else f"error: {code}"]
    lines.extend(f"  {field}: {why}" for field, why in field_violations(status))
    if code in HINTS:
        lines.append(HINTS[code])
    return lines

"""gRPC errors as a user reads them: ``error: INVALID_ARGUMENT: <message>``, one line per bad field,
and a hint that names the cause, read from the error's ``ErrorInfo`` reason (``services/core/errors.py``):
etcd down behind a running api is not a stopped stack, a revoked token is not a missing one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.rpc import status_pb2

TOKEN_HINT = "hint: pass --token or set STRATUS_TOKEN (a stack's tokens are in its stack.json)"
# by the error's code, when its reason has no hint of its own
HINTS = {
    "UNAUTHENTICATED": TOKEN_HINT,
    "PERMISSION_DENIED": "hint: this needs another role; the admin token of `stratus up` is in stack.json",
}
# by the ErrorInfo reason the api gives
REASON_HINTS = {
    "STATE_STORE_UNAVAILABLE": (
        "hint: the api is up, but its state store (etcd) does not answer it: the stack is not down, its etcd "
        "is; `stratus etcd status` shows the cluster, the stack's logs/etcd.log what happened"
    ),
    "STATE_STORE_FULL": (
        "hint: etcd is out of space (alarm NOSPACE) and refuses writes; reads still work: "
        "`stratus etcd status` shows it, and once space is freed `stratus etcd disarm`"
    ),
    "MISSING_TOKEN": TOKEN_HINT,
    "BAD_TOKEN": (
        "hint: this api does not know the token: one of another stack, or mistyped "
        "(`stratus up` keeps a state dir's tokens across restarts; its stack.json has them)"
    ),
    "TOKEN_REVOKED": (
        "hint: the token was revoked: use another one (an admin makes one with `stratus token create`), "
        "or unset it to use stack.json's"
    ),
    "TOKEN_EXPIRED": "hint: the token has expired: an admin makes a new one with `stratus token create`",
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
    from google.rpc import error_details_pb2

    if status is None:
        return []
    out: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


def reason_of(status: status_pb2.Status | None) -> str:
    """The ``ErrorInfo`` reason the api gave ("" when the error carries none: gRPC's own, a
    connection that failed)."""
    from google.rpc import error_details_pb2

    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def hint(code: str, reason: str) -> str | None:
    return REASON_HINTS.get(reason) or HINTS.get(code)


def describe(code: str, message: str, status: status_pb2.Status | None) -> list[str]:
    lines = [f"error: {code}: {message}" if message else f"error: {code}"]
    lines.extend(f"  {field}: {why}" for field, why in field_violations(status))
    said = hint(code, reason_of(status))
    if said:
        lines.append(said)
    return lines


def is_transport(code: str, status: status_pb2.Status | None) -> bool:
    """An UNAVAILABLE that gRPC made (no connection, or it broke), not one the api answered."""
    return code == "UNAVAILABLE" and not reason_of(status)

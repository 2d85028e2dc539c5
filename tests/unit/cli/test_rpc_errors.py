"""gRPC errors as printed: the code and message, then one line per bad field."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.cli.rpc_errors import describe, field_violations


def bad_request(*violations: tuple[str, str]) -> status_pb2.Status:
    fields = [error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations]
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=fields))
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="stratus.dev"))
    return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad", details=[info, detail])


def test_each_field_violation_gets_a_line() -> None:
    status = bad_request(("server.name", "is required"), ("server.flavor_id", "unknown flavor"))
    assert describe("INVALID_ARGUMENT", "server.name: is required", status) == [
        "error: INVALID_ARGUMENT: server.name: is required",
        "  server.name: is required",
        "  server.flavor_id: unknown flavor",
    ]


def test_an_error_without_details_is_one_line() -> None:
    assert describe("NOT_FOUND", "server 'x' not found", None) == ["error: NOT_FOUND: server 'x' not found"]
    assert field_violations(None) == []


def test_auth_errors_carry_a_hint() -> None:
    lines = describe("UNAUTHENTICATED", "the bearer token is not valid", None)
    assert lines[0] == "error: UNAUTHENTICATED: the bearer token is not valid"
    assert "--token" in lines[1]

"""An error is printed once, and its hint names the real cause: etcd down behind a running api is
not a stopped stack, a revoked or unknown token is not a missing one, a dead api is said at once."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from services.cli import client, rpc_errors
from services.cli.main import app
from services.cli.target import Target
from tests.unit.cli.fakes import RpcFailure, failing, serve

runner = CliRunner()
UNAVAILABLE, UNAUTHENTICATED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED
STACK = Target("127.0.0.1:8774", "secret", "/s/stack.json", token_source="STRATUS_TOKEN")


def lines_for(err: RpcFailure, target: Target = STACK) -> list[str]:
    return client.error_lines(err, target)


def test_etcd_down_behind_a_running_api_is_not_a_stopped_stack() -> None:
    lines = lines_for(RpcFailure(UNAVAILABLE, "the state store is unreachable; retry", "STATE_STORE_UNAVAILABLE"))
    assert lines[0] == "error: UNAVAILABLE: the state store is unreachable; retry"
    assert "etcd" in lines[1] and "still up" not in " ".join(lines)


def test_a_full_etcd_says_so() -> None:
    lines = lines_for(RpcFailure(UNAVAILABLE, "the state store is out of space", "STATE_STORE_FULL"))
    assert "out of space" in lines[-1] and "stratus etcd disarm" in lines[-1]


def test_no_connection_is_a_stopped_stack_naming_the_api_and_where_it_came_from() -> None:
    lines = lines_for(RpcFailure(UNAVAILABLE, "failed to connect to all addresses"))  # gRPC's own: no trailers
    assert lines[0].startswith("error: UNAVAILABLE: cannot reach the api at 127.0.0.1:8774 (from /s/stack.json)")
    assert "is the stack still up?" in lines[-1]


@pytest.mark.parametrize(
    ("reason", "says", "not_says"),
    [
        ("TOKEN_REVOKED", "was revoked", "pass --token"),
        ("TOKEN_EXPIRED", "has expired", "pass --token"),
        ("BAD_TOKEN", "does not know the token", "pass --token"),
        ("MISSING_TOKEN", "pass --token", "revoked"),
    ],
)
def test_each_token_failure_gets_its_own_hint(reason: str, says: str, not_says: str) -> None:
    lines = lines_for(RpcFailure(UNAUTHENTICATED, "no", reason))
    hint = lines[-1]
    assert hint.startswith("hint: ") and says in hint and not_says not in hint
    assert "  the token came from STRATUS_TOKEN" in lines  # which token it was
    assert "secret" not in " ".join(lines)


def test_an_error_without_a_reason_keeps_the_codes_hint() -> None:
    assert rpc_errors.describe("UNAUTHENTICATED", "x", None)[-1] == rpc_errors.TOKEN_HINT
    assert rpc_errors.describe("PERMISSION_DENIED", "x", None)[-1].startswith("hint: this needs another role")


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (failing(UNAVAILABLE, "the state store is unreachable; retry", "STATE_STORE_UNAVAILABLE"), "etcd"),
        (failing(UNAUTHENTICATED, "token t1 was revoked", "TOKEN_REVOKED"), "revoked"),
        (failing(UNAVAILABLE, "failed to connect to all addresses"), "still up"),
        (failing(grpc.StatusCode.NOT_FOUND, "server 'x' not found"), "not found"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["server", "list"], ["server", "show", "x"], ["server", "list", "-f", "json"], ["flavor", "list"],
     ["server", "stop", "x", "--wait"]],
)  # fmt: skip
def test_an_error_is_printed_once(
    monkeypatch: pytest.MonkeyPatch, failure: object, cause: str, command: list[str]
) -> None:
    every = ("ListServers", "GetServer", "ListFlavors", "ListImages", "StopServer", "WatchServers")
    serve(monkeypatch, dict.fromkeys(every, failure))  # type: ignore[arg-type]
    result = runner.invoke(app, [*command, "--api", "127.0.0.1:1", "--token", "t"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("error:") == 1, result.stderr
    assert cause in result.stderr
    assert "Traceback" not in result.output


def test_an_api_that_takes_no_connection_is_reported_at_once(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        start = time.monotonic()
        result = runner.invoke(app, ["server", "list", "--api", f"127.0.0.1:{port}", "--token", "t",
                                     "--state-dir", str(tmp_path)])  # fmt: skip
        elapsed = time.monotonic() - start
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: cannot reach the api at 127.0.0.1:{port} (from --api)")
    assert "is the stack still up?" in lines[-1] and len(lines) == 2
    assert elapsed < client.CONNECT_TIMEOUT_S  # refused: no waiting for the timeout


def test_the_connect_timeout_reports_a_dead_api_within_three_seconds() -> None:
    assert client.CONNECT_TIMEOUT_S <= 2.0  # plus start-up, well within the 3 s promised


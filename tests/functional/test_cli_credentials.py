"""The CLI's credentials go where they belong (issue 17, item 4): the token in a state dir's
stack.json is sent only to that stack's api; `--api`/`STRATUS_API` elsewhere needs an explicit
`--token`, and without one the CLI stops before connecting. Black box: the real CLI in a process,
a fake stack.json, a bare listener or a plaintext gRPC server that records what reaches it."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.cli import stratus

STACK_TOKEN = f"stack-admin-{uuid.uuid4().hex}"


def write_stack_json(state_dir: Path, api: str, ca_cert: str = "") -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    info = {"api": api, "apis": [api], "etcd": ["http://127.0.0.1:2379"], "token": STACK_TOKEN,
            "demo_token": f"demo-{uuid.uuid4().hex}", "state_dir": str(state_dir), "ca_cert": ca_cert}  # fmt: skip
    (state_dir / "stack.json").write_text(json.dumps(info))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A bare TCP listener nobody accepts on while the CLI runs: a connection waits in its backlog."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def address(sock: socket.socket) -> str:
    return f"127.0.0.1:{sock.getsockname()[1]}"


def received(sock: socket.socket) -> list[bytes]:
    """What each connection made to ``sock`` so far sent (the CLI has exited)."""
    sock.settimeout(0.5)
    got: list[bytes] = []
    while True:
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            return got
        with conn:
            conn.settimeout(0.5)
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
            except TimeoutError:
                pass
            got.append(data)


class Recorder(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A plaintext gRPC server's only handler: records each call's metadata; every method is UNIMPLEMENTED."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def service(self, handler_call_details: Any) -> None:
        self.calls.append(dict(handler_call_details.invocation_metadata))


@pytest.fixture
def recording_api() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[recorder])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", recorder
    finally:
        server.stop(0)


def assert_refused_before_connecting(out: subprocess.CompletedProcess[str], sock: socket.socket) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and "--token" in lines[0] and "STRATUS_TOKEN" in lines[0]
    assert STACK_TOKEN not in out.stderr + out.stdout
    assert received(sock) == []  # not even a connection


@pytest.mark.parametrize("ca_cert", ["", "/nonexistent/tls/ca.pem"], ids=["plaintext-stack", "tls-stack"])
def test_api_flag_elsewhere_sends_no_stack_token(listener: socket.socket, tmp_path: Path, ca_cert: str) -> None:
    write_stack_json(tmp_path, "127.0.0.1:1", ca_cert)
    out = stratus("server", "list", "--api", address(listener), "--state-dir", str(tmp_path))
    assert_refused_before_connecting(out, listener)
    assert f"{address(listener)} (from --api) is not an api of the stack" in out.stderr


def test_stratus_api_elsewhere_sends_no_stack_token(listener: socket.socket, tmp_path: Path) -> None:
    write_stack_json(tmp_path, "127.0.0.1:1")
    out = stratus("flavor", "list", env={"STRATUS_API": address(listener), "STRATUS_STATE_DIR": str(tmp_path)})
    assert_refused_before_connecting(out, listener)
    assert "(from STRATUS_API)" in out.stderr


def test_another_ca_for_the_stacks_api_sends_no_stack_token(listener: socket.socket, tmp_path: Path) -> None:
    write_stack_json(tmp_path, address(listener), "/nonexistent/tls/ca.pem")
    out = stratus("--ca-cert", str(tmp_path / "other-ca.pem"), "server", "list", "--state-dir", str(tmp_path))
    assert_refused_before_connecting(out, listener)


def test_an_explicit_token_goes_to_any_api(recording_api: tuple[str, Recorder], tmp_path: Path) -> None:
    api, recorder = recording_api
    write_stack_json(tmp_path, "127.0.0.1:1")
    mine = f"mine-{uuid.uuid4().hex}"
    by_flag = stratus("server", "list", "--api", api, "--token", mine, "--state-dir", str(tmp_path))
    by_env = stratus("server", "list", env={"STRATUS_API": api, "STRATUS_TOKEN": mine,
                                            "STRATUS_STATE_DIR": str(tmp_path)})  # fmt: skip
    for out in (by_flag, by_env):
        assert out.returncode == 1 and "UNIMPLEMENTED" in out.stderr, out.stderr  # it reached the recorder
    assert [call.get("authorization") for call in recorder.calls] == [f"Bearer {mine}"] * 2


def test_the_stack_token_goes_to_the_stacks_own_api(recording_api: tuple[str, Recorder], tmp_path: Path) -> None:
    api, recorder = recording_api
    write_stack_json(tmp_path, api)
    implicit = stratus("server", "list", "--state-dir", str(tmp_path))
    named = stratus("server", "list", "--api", api, "--state-dir", str(tmp_path))
    for out in (implicit, named):
        assert out.returncode == 1 and "UNIMPLEMENTED" in out.stderr, out.stderr
    assert [call.get("authorization") for call in recorder.calls] == [f"Bearer {STACK_TOKEN}"] * 2

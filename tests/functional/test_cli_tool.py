"""The CLI as a tool people keep open (issue 18, item 7), black box: the real ``stratus`` in a
process against a real stack. Names beside ids in json, ``--wait`` progress on stderr, options
before the command, a dead or hung api reported within 3 s, an error printed once with a hint for
its cause, and a state dir's admin and demo tokens kept across ``stratus up`` restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stratus.v1 import servers_pb2
from tests.support.cli import stratus
from tests.support.stack import Stack, start_stack

REPORTED_WITHIN_S = 3.0


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    out = stratus(*args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def errors(out: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def server(stack: Stack) -> Iterator[tuple[str, str]]:
    name = f"tool-{uuid.uuid4().hex[:6]}"
    created = ok("--state-dir", str(stack.state_dir), "server", "create", name, "--flavor", "m1.tiny", "--image",
                 "tiny", "--wait", "-f", "json")  # fmt: skip
    sid = json.loads(created)["id"]
    yield name, sid
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
    stack.wait_gone(sid)


def test_json_and_yaml_carry_the_names_the_table_shows(stack: Stack, server: tuple[str, str]) -> None:
    name, sid = server
    where = ("--state-dir", str(stack.state_dir))
    listed = {s["id"]: s for s in json.loads(ok("server", "list", "-f", "json", *where))}
    assert (listed[sid]["flavor_name"], listed[sid]["image_name"]) == ("m1.tiny", "tiny")
    assert listed[sid]["flavor_id"] != "m1.tiny"  # the ids are still there, beside the names
    shown = json.loads(ok("server", "show", name, "-f", "json", *where))
    assert (shown["id"], shown["flavor_name"], shown["image_name"]) == (sid, "m1.tiny", "tiny")
    table = ok("server", "list", "-f", "value", "-c", "id", "-c", "flavor", "-c", "image", *where)
    assert f"{sid} m1.tiny tiny" in table.splitlines()


def test_wait_shows_each_change_on_stderr_and_keeps_stdout_parseable(stack: Stack) -> None:
    out = stratus("server", "create", f"wait-{uuid.uuid4().hex[:6]}", "--flavor", "m1.tiny", "--image", "tiny",
                  "--wait", "-f", "json", "--state-dir", str(stack.state_dir))  # fmt: skip
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["id"]  # stdout: the server, nothing else
    try:
        progress = out.stderr.strip().splitlines()
        assert progress[-1].endswith(f"({sid}): ACTIVE"), out.stderr
        assert any(": BUILD" in line for line in progress[:-1]), out.stderr
        assert len(progress) == len(set(line.split("s ", 1)[1] for line in progress))  # a line per change
        gone = stratus("server", "delete", sid, "--wait", "--state-dir", str(stack.state_dir))
        assert gone.returncode == 0 and gone.stderr.strip().splitlines()[-1].endswith(f"server {sid}: gone")
    finally:
        try:
            stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND  # the test deleted it


def test_token_and_api_before_the_command(stack: Stack, server: tuple[str, str]) -> None:
    _, sid = server
    demo, admin = stack.info["demo_token"], stack.info["token"]
    before = ok("--state-dir", str(stack.state_dir), "--token", demo, "-f", "json", "server", "list")
    after = ok("server", "list", "-f", "json", "--state-dir", str(stack.state_dir), "--token", demo)
    assert json.loads(before) == json.loads(after)
    assert sid not in before  # the admin's server: demo's project does not see it
    by_api = ok("--api", stack.api, "--token", admin, "--ca-cert", str(stack.tls_file("ca.pem")), "server", "list",
                "-f", "value", "-c", "id", "--state-dir", "/nonexistent")  # fmt: skip
    assert sid in by_api.split()


def test_a_revoked_token_is_named_as_such_once(stack: Stack) -> None:
    where = ("--state-dir", str(stack.state_dir))
    made = json.loads(ok("token", "create", "--project", "demo", "--user", "ann", "--role", "reader", "-f", "json",
                         *where))  # fmt: skip
    ok("--token", made["token"], "server", "list", *where)  # the token works until revoked
    ok("token", "revoke", made["id"], *where)
    out = stratus("server", "list", *where, env={"STRATUS_TOKEN": made["token"]})
    assert out.returncode == 1 and out.stdout == ""
    assert errors(out) == [f"error: UNAUTHENTICATED: token {made['id']} was revoked"]
    assert "came from STRATUS_TOKEN" in out.stderr and "revoked" in out.stderr.splitlines()[-1]
    assert "pass --token" not in out.stderr
    unknown = stratus("--token", "not-a-token", "server", "list", *where)
    assert len(errors(unknown)) == 1 and "does not know the token" in unknown.stderr


def test_a_dead_api_is_reported_within_3_s() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    start = time.monotonic()
    out = stratus("server", "list", "--api", address, "--token", "t")
    assert time.monotonic() - start < REPORTED_WITHIN_S
    assert out.returncode == 1 and len(errors(out)) == 1
    assert errors(out)[0].startswith(f"error: cannot reach the api at {address} (from --api)")
    assert "is the stack still up?" in out.stderr


def test_an_api_that_takes_the_connection_but_never_answers_is_reported_within_3_s(stack: Stack) -> None:
    with socket.socket() as sock:  # a stopped api: the kernel takes the connection, no TLS handshake follows
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        out = stratus("--ca-cert", str(stack.tls_file("ca.pem")), "server", "list", "--api", address, "--token", "t")
        elapsed = time.monotonic() - start
    assert out.returncode == 1 and len(errors(out)) == 1, out.stderr
    assert elapsed < REPORTED_WITHIN_S, elapsed
    assert errors(out)[0].startswith(f"error: UNAVAILABLE: cannot reach the api at {address}")


def etcd_pid(state_dir: Path) -> int:
    """The pid of the stack's own etcd (the launcher's child, its data dir in the state dir)."""
    wanted = f"{state_dir / 'etcd'}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"etcd") and wanted in argv:
                return int(proc.name)
    raise AssertionError(f"no etcd with data dir {wanted!r}")


def test_tokens_survive_restarts_and_etcd_down_is_not_a_stopped_stack(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = start_stack(state_dir, "--driver", "fake")
    try:
        admin, demo = first.info["token"], first.info["demo_token"]
    finally:
        assert first.stop() == 0, first.log_tail()
    assert not (state_dir / "stack.json").exists()  # a stopped stack leaves no stack.json
    second = start_stack(state_dir, "--driver", "fake")
    try:
        assert (second.info["token"], second.info["demo_token"]) == (admin, demo)
        exported = {"STRATUS_TOKEN": admin, "STRATUS_STATE_DIR": str(state_dir)}
        assert "m1.tiny" in ok("flavor", "list", env=exported)  # the token exported from the first run
        assert ok("server", "list", "-f", "json", env={**exported, "STRATUS_TOKEN": demo}) == "[]\n"
        pid = etcd_pid(state_dir)
        os.kill(pid, signal.SIGSTOP)
        try:
            out = stratus("server", "list", env=exported)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert out.returncode == 1 and errors(out) == ["error: UNAVAILABLE: the state store is unreachable; retry"]
        assert "etcd" in out.stderr.splitlines()[-1] and "still up" not in out.stderr
    finally:
        assert second.stop() == 0, second.log_tail()

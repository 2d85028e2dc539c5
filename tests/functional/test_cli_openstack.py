"""The CLI as the openstack client feels: -f value/yaml with -c, names for ids, several ids in one
delete, --all-projects with a PROJECT column, refusals that say what would be valid."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from typing import Any

import grpc
import pytest
import yaml

from stratus.v1 import servers_pb2
from tests.support.stack import ROOT, Stack


def stratus(stack: Stack | None, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "services.cli.main", *args]
    if stack is not None:
        cmd += ["--state-dir", str(stack.state_dir)]
    if token is not None:
        cmd += ["--token", token]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def ok(stack: Stack, *args: str, token: str | None = None) -> str:
    out = stratus(stack, *args, token=token)
    assert out.returncode == 0, out.stderr
    return out.stdout


def create(stack: Stack, name: str, token: str | None = None) -> str:
    return ok(stack, "server", "create", name, "--flavor", "m1.tiny", "--image", "tiny", "--wait",
              "-f", "value", "-c", "id", token=token).strip()  # fmt: skip


def delete(stack: Stack, *ids: str) -> None:
    for sid in ids:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
    for sid in ids:
        stack.wait_gone(sid)


@pytest.fixture
def web(stack: Stack) -> Any:
    name = f"web-{uuid.uuid4().hex[:6]}"
    sid = create(stack, name)
    yield name, sid
    try:
        delete(stack, sid)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND  # the test deleted it


def test_value_and_columns_and_names_for_ids(stack: Stack, web: tuple[str, str]) -> None:
    name, sid = web
    rows = ok(stack, "server", "list", "-f", "value", "-c", "ID", "-c", "Name", "-c", "flavor", "-c", "image")
    assert f"{sid} {name} m1.tiny tiny" in rows.splitlines()  # names, not ids
    assert ok(stack, "server", "show", name, "-f", "value", "-c", "status", "-c", "id") == f"ACTIVE\n{sid}\n"
    bad = stratus(stack, "server", "list", "-c", "colour")
    assert bad.returncode == 2 and "FLAVOR" in bad.stderr and "colour" in bad.stderr


def test_yaml_and_json_have_status_words(stack: Stack, web: tuple[str, str]) -> None:
    name, sid = web
    shown = yaml.safe_load(ok(stack, "server", "show", sid, "-f", "yaml"))
    assert (shown["id"], shown["status"], shown["power_state"], shown["task_state"]) == (sid, "ACTIVE", "RUNNING", None)
    listed = json.loads(ok(stack, "server", "list", "-f", "json", "-c", "id", "-c", "status"))
    assert {"id": sid, "status": "ACTIVE"} in listed
    assert {"name": name} in yaml.safe_load(ok(stack, "server", "list", "-f", "yaml", "-c", "name"))
    stopped = yaml.safe_load(ok(stack, "server", "stop", name, "--wait", "-f", "yaml", "-c", "status"))
    assert stopped == {"status": "SHUTOFF"}  # an action on a name, waited for


def test_an_ambiguous_name_asks_for_the_id(stack: Stack) -> None:
    name = f"twin-{uuid.uuid4().hex[:6]}"
    first, second = create(stack, name), create(stack, name)
    try:
        out = stratus(stack, "server", "show", name)
        assert out.returncode == 1 and "give an id" in out.stderr and first in out.stderr and second in out.stderr
    finally:
        delete(stack, first, second)


def test_delete_several_reports_the_bad_one_and_deletes_the_rest(stack: Stack) -> None:
    names = [f"multi-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    ids = [create(stack, name) for name in names]
    out = stratus(stack, "server", "delete", ids[0], "no-such-server", names[1], "--wait")
    assert out.returncode == 1
    assert "cannot delete server 'no-such-server': NOT_FOUND" in out.stderr
    assert "1 of 3 servers could not be deleted" in out.stderr
    assert all(f"server {sid} deleted" in out.stdout for sid in ids)
    for sid in ids:
        with pytest.raises(grpc.RpcError) as info:
            stack.servers.GetServer(servers_pb2.GetServerRequest(id=sid), metadata=stack.md())
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_all_projects_adds_a_project_column(stack: Stack) -> None:
    demo = stack.info["demo_token"]
    name = f"demo-{uuid.uuid4().hex[:6]}"
    sid = create(stack, name, token=demo)
    try:
        project = json.loads(ok(stack, "server", "show", sid, "-f", "json", token=demo))["project_id"]
        rows = ok(stack, "server", "list", "--all-projects", "-f", "value", "-c", "name", "-c", "project")
        assert f"{name} {project}" in rows.splitlines()
        assert "PROJECT" in ok(stack, "server", "list", "--all-projects").splitlines()[0]
        assert "PROJECT" not in ok(stack, "server", "list").splitlines()[0]
        assert "PROJECT" in ok(stack, "server-group", "list", "--all-projects").splitlines()[0]
    finally:
        delete(stack, sid)


def test_an_unknown_status_is_refused_by_the_cli_and_the_api(stack: Stack) -> None:
    cli = stratus(stack, "server", "list", "--status", "RUNNING")
    assert cli.returncode == 2 and "ACTIVE" in cli.stderr and "SHUTOFF" in cli.stderr
    api = stratus(stack, "server", "list", "--filter", "status=RUNNING")
    assert api.returncode == 1 and "INVALID_ARGUMENT" in api.stderr and "SHUTOFF" in api.stderr
    with pytest.raises(grpc.RpcError) as info:
        stack.servers.ListServers(servers_pb2.ListServersRequest(filter="status=RUNNING"), metadata=stack.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_placement_explain_exits_1_when_no_host_fits(stack: Stack) -> None:
    flavor = f"huge-{uuid.uuid4().hex[:6]}"
    ok(stack, "flavor", "create", flavor, "--vcpus", "64", "--ram", "64", "--disk", "1")
    try:
        out = stratus(stack, "placement", "explain", "--flavor", flavor, "--image", "tiny")
        assert out.returncode == 1 and "no valid host" in out.stdout
        host = stratus(stack, "placement", "explain", "--flavor", "m1.tiny", "--image", "tiny", "-f", "value",
                       "-c", "selected_host")  # fmt: skip
        assert host.returncode == 0 and host.stdout.strip() in {"compute-1", "compute-2"}
    finally:
        ok(stack, "flavor", "delete", flavor)


def test_an_unreachable_api_fails_fast_with_a_clear_message() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    out = stratus(None, "server", "list", "--api", address, "--token", "t")
    assert out.returncode == 1
    assert f"cannot reach the api at {address}" in out.stderr and "stratus up" in out.stderr


def test_version() -> None:
    out = stratus(None, "--version")
    assert out.returncode == 0 and out.stdout.startswith("stratus ") and out.stdout.strip() != "stratus"

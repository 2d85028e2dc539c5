"""Server actions on a real stack: a create with its schedule and spawn steps, a build retried on
another host with each attempt's host and error, power actions with the caller's x-request-id,
another project's NOT_FOUND, a deleted server's actions still readable, and the CLI."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import pytest

from services.api.flows.action_log import RETENTION_S
from stratus.v1 import servers_pb2 as pb
from tests.functional.test_cli_actions import stratus
from tests.functional.test_policy import create_token
from tests.support.stack import Stack, start_stack

R = pb.ServerActionResult
SUCCESS, ERROR = R.SERVER_ACTION_RESULT_SUCCESS, R.SERVER_ACTION_RESULT_ERROR


def create(stack: Stack, name: str, request_id: str = "") -> pb.Server:
    spec = pb.Server(name=name, flavor_id="m1.tiny", image_id="tiny")
    server = stack.servers.CreateServer(pb.CreateServerRequest(server=spec, request_id=request_id),
                                        metadata=stack.md("demo"))  # fmt: skip
    done: pb.Server = stack.wait_for_server(server.id, {"ACTIVE", "ERROR"}, who="demo")
    assert done.status == pb.ServerStatus.SERVER_STATUS_ACTIVE, done.fault
    return done


def actions_of(stack: Stack, sid: str, md: list[tuple[str, str]], settle_s: float = 10.0) -> list[pb.ServerAction]:
    """The server's actions once none is RUNNING (an action ends just after the record it
    changes: a reader that saw the record first may briefly see the action still running)."""
    deadline = time.monotonic() + settle_s
    while True:
        found = list(stack.servers.ListServerActions(pb.ListServerActionsRequest(id=sid), metadata=md).actions)
        if all(a.result != pb.ServerActionResult.SERVER_ACTION_RESULT_RUNNING for a in found):
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def delete(stack: Stack, sid: str) -> None:
    stack.servers.DeleteServer(pb.DeleteServerRequest(id=sid), metadata=stack.md("demo"))
    stack.wait_gone(sid)


def test_a_create_is_one_action_with_its_steps(stack: Stack) -> None:
    request_id = f"act-{uuid.uuid4().hex}"
    server = create(stack, "acted", request_id)
    try:
        (action,) = actions_of(stack, server.id, stack.md("demo"))
        assert (action.action, action.request_id, action.result) == ("create", request_id, SUCCESS)
        assert action.project_id == server.project_id and action.user_id == server.user_id
        assert action.finish_time.ToNanoseconds() >= action.start_time.ToNanoseconds() > 0
        steps = [(e.name, e.host, e.result) for e in action.events]
        assert steps == [("schedule", server.host, SUCCESS), ("spawn", server.host, SUCCESS)]
    finally:
        delete(stack, server.id)


def test_a_retried_build_shows_each_attempt_with_its_host_and_error(stack: Stack, failing_compute: str) -> None:
    server = create(stack, "retried")
    try:
        (action,) = actions_of(stack, server.id, stack.md("demo"))
        assert action.result == SUCCESS
        steps = [(e.name, e.host, e.result) for e in action.events]
        assert steps == [("schedule", failing_compute, SUCCESS), ("spawn", failing_compute, ERROR),
                         ("schedule", server.host, SUCCESS), ("spawn", server.host, SUCCESS)]  # fmt: skip
        assert "spawn failed" in action.events[1].message, action.events[1]
    finally:
        delete(stack, server.id)


def test_power_actions_with_the_callers_request_id_and_another_project(stack: Stack) -> None:
    server = create(stack, "powered")
    deleted = False
    try:
        md = [*stack.md("demo"), ("x-request-id", "req-stop-1")]
        stack.servers.StopServer(pb.StopServerRequest(id=server.id), metadata=md)
        stack.wait_for_server(server.id, {"SHUTOFF"}, who="demo")
        stack.servers.StartServer(pb.StartServerRequest(id=server.id), metadata=stack.md("demo"))
        stack.wait_for_server(server.id, {"ACTIVE"}, who="demo")
        start, stop, made = actions_of(stack, server.id, stack.md("demo"))
        assert [a.action for a in (start, stop, made)] == ["start", "stop", "create"]
        assert stop.request_id == "req-stop-1" and start.request_id.startswith("req-")
        assert (stop.result, [(e.name, e.host) for e in stop.events]) == (SUCCESS, [("power off", server.host)])
        assert (start.result, [(e.name, e.host) for e in start.events]) == (SUCCESS, [("power on", server.host)])
        assert len(actions_of(stack, server.id, stack.md())) == 3  # an admin sees every project's

        other = [("authorization", f"Bearer {create_token(stack, f'other-{uuid.uuid4().hex[:6]}', 'eve', 'member')}")]
        with pytest.raises(grpc.RpcError) as info:
            actions_of(stack, server.id, other)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        delete(stack, server.id)
        deleted = True
        kept = actions_of(stack, server.id, stack.md("demo"))  # kept for RETENTION_S after the record goes
        assert [(a.action, a.result) for a in kept][:2] == [("delete", SUCCESS), ("start", SUCCESS)], RETENTION_S
        assert [(e.name, e.host, e.result) for e in kept[0].events] == [("destroy", server.host, SUCCESS)]
        with pytest.raises(grpc.RpcError) as info:
            actions_of(stack, server.id, other)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        if not deleted:
            delete(stack, server.id)


def test_the_cli_lists_actions_and_their_steps(stack: Stack) -> None:
    server = create(stack, f"cli-acts-{uuid.uuid4().hex[:6]}")
    try:
        table = stratus(stack, "server", "actions", server.name, "--token", stack.info["demo_token"])
        assert table.returncode == 0, table.stderr.decode()
        text = table.stdout.decode()
        assert "ACTION" in text and "REQUEST ID" in text and "create" in text and "SUCCESS" in text
        steps = stratus(stack, "server", "actions", server.id, "--steps", "-f", "value", "-c", "step", "-c", "host")
        assert steps.stdout.decode().split("\n")[:2] == [f"schedule {server.host}", f"spawn {server.host}"]
        data = json.loads(stratus(stack, "server", "actions", server.id, "-f", "json").stdout)
        assert data[0]["action"] == "create" and data[0]["result"] == "SUCCESS"
        assert [e["name"] for e in data[0]["events"]] == ["schedule", "spawn"]
        missing = stratus(stack, "server", "actions", str(uuid.uuid4()))
        assert missing.returncode != 0 and b"NOT_FOUND" in missing.stderr
    finally:
        delete(stack, server.id)


def test_a_build_that_fails_everywhere_ends_in_error_with_every_attempt(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "failing", "--driver", "fake", "--computes", "2",
                        env={"STRATUS_FAKE_FAIL_SPAWN": "true"})  # fmt: skip
    try:
        spec = pb.Server(name="doomed", flavor_id="m1.tiny", image_id="tiny")
        server = stack.servers.CreateServer(pb.CreateServerRequest(server=spec), metadata=stack.md("demo"))
        failed = stack.wait_for_server(server.id, {"ERROR"}, who="demo")
        (action,) = actions_of(stack, server.id, stack.md("demo"))
        assert (action.result, action.message) == (ERROR, failed.fault.message)
        names = [(e.name, e.result) for e in action.events]
        # Each attempt is a schedule and a failed spawn; the last schedule finds no host left. (Two
        # attempts normally; one when a starved machine makes a compute look down for a moment.)
        attempts = (len(names) - 1) // 2
        assert 1 <= attempts <= 2 and names == [("schedule", SUCCESS), ("spawn", ERROR)] * attempts + [
            ("schedule", ERROR)], action  # fmt: skip
        spawned = [e.host for e in action.events if e.name == "spawn"]
        assert len(set(spawned)) == attempts and set(spawned) <= {"compute-1", "compute-2"}
        assert all("spawn failed" in e.message for e in action.events if e.name == "spawn")
        assert "no valid host" in action.events[-1].message
    finally:
        assert stack.stop() == 0, stack.log_tail()

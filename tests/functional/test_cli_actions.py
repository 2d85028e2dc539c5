"""``stratus server <action> --wait``, ``server snapshot`` and ``server create --user-data``."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from stratus.v1 import images_pb2, servers_pb2
from tests.support.stack import ROOT, Stack


def stratus(stack: Stack, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "services.cli.main", *args, "--state-dir", str(stack.state_dir)]
    return subprocess.run(cmd, cwd=ROOT, input=stdin, capture_output=True, timeout=120, check=False)


def ok_json(stack: Stack, *args: str, stdin: bytes = b"") -> Any:
    out = stratus(stack, *args, "-f", "json", stdin=stdin)
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_actions_wait_until_done(stack: Stack) -> None:
    data = b"#cloud-config\nhostname: cli\n"
    server = ok_json(stack, "server", "create", f"cli-{uuid.uuid4().hex[:6]}", "--flavor", "m1.tiny",
                     "--image", "tiny", "--user-data", "-", "--wait", stdin=data)  # fmt: skip
    sid = server["id"]
    try:
        got = stack.servers.GetServer(servers_pb2.GetServerRequest(id=sid), metadata=stack.md())
        assert got.user_data == data
        for action, status in (("pause", "PAUSED"), ("unpause", "ACTIVE"), ("suspend", "SUSPENDED"),
                               ("resume", "ACTIVE"), ("stop", "SHUTOFF"), ("start", "ACTIVE")):  # fmt: skip
            done = ok_json(stack, "server", action, sid, "--wait")
            assert (done["status"], done["task_state"]) == (status, None)
        resized = ok_json(stack, "server", "resize", sid, "--flavor", "m1.small", "--wait")
        assert resized["status"] == "VERIFY_RESIZE"
        reverted = ok_json(stack, "server", "revert-resize", sid, "--wait")
        assert reverted["status"] == "ACTIVE" and reverted["flavor_id"] == server["flavor_id"]
        refused = stratus(stack, "server", "unpause", sid, "--wait")
        assert refused.returncode == 1 and b"FAILED_PRECONDITION" in refused.stderr
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=sid), metadata=stack.md())
        stack.wait_gone(sid)


def test_snapshot_waits_for_the_image(stack: Stack) -> None:
    server = ok_json(stack, "server", "create", "cli-snap", "--flavor", "m1.tiny", "--image", "tiny", "--wait")
    try:
        image = ok_json(stack, "server", "snapshot", server["id"], "--name", "cli-snap-image", "--wait")
        assert image["status"] == "ACTIVE" and image["name"] == "cli-snap-image"
        stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image["id"]), metadata=stack.md())
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server["id"]), metadata=stack.md())
        stack.wait_gone(server["id"])


def test_user_data_over_the_limit_is_refused_before_any_call(stack: Stack) -> None:
    out = stratus(stack, "server", "create", "big-data", "--flavor", "m1.tiny", "--image", "tiny",
                  "--user-data", "-", stdin=b"x" * (64 * 1024 + 1))  # fmt: skip
    assert out.returncode == 2 and b"--user-data" in out.stderr

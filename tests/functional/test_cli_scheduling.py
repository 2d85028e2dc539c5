"""``stratus server-group``, ``aggregate`` and ``placement`` against the session stack."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from tests.support.stack import ROOT, Stack


def stratus(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "services.cli.main", *args, "--state-dir", str(stack.state_dir)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def ok_json(stack: Stack, *args: str) -> Any:
    out = stratus(stack, *args, "-f", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_server_group_commands(stack: Stack) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    group = ok_json(stack, "server-group", "create", name, "--policy", "anti-affinity", "--max-per-host", "2")
    assert group["policy"] == "ANTI_AFFINITY" and group["rules"]["max_server_per_host"] == 2
    assert group["id"] in {g["id"] for g in ok_json(stack, "server-group", "list")}
    assert ok_json(stack, "server-group", "show", name)["id"] == group["id"]
    table = stratus(stack, "server-group", "list")
    assert table.returncode == 0 and "anti-affinity" in table.stdout
    bad = stratus(stack, "server-group", "create", "x", "--policy", "sideways")
    assert bad.returncode == 2
    gone = stratus(stack, "server-group", "delete", group["id"])
    assert gone.returncode == 0 and "deleted" in gone.stdout


def test_aggregate_commands(stack: Stack) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    aggregate = ok_json(stack, "aggregate", "create", name, "--zone", "az-cli")
    assert aggregate["availability_zone"] == "az-cli"
    assert ok_json(stack, "aggregate", "add-host", name, "compute-2")["hosts"] == ["compute-2"]
    changed = ok_json(stack, "aggregate", "set", name, "ssd=true", "availability_zone=")
    assert changed["metadata"] == {"ssd": "true"} and changed["availability_zone"] == ""
    refused = stratus(stack, "aggregate", "delete", name)
    assert refused.returncode == 1 and "FAILED_PRECONDITION" in refused.stderr
    assert ok_json(stack, "aggregate", "remove-host", name, "compute-2")["hosts"] == []
    assert ok_json(stack, "aggregate", "show", aggregate["id"])["name"] == name
    assert stratus(stack, "aggregate", "delete", name).returncode == 0
    assert name not in {a["name"] for a in ok_json(stack, "aggregate", "list")}


def test_placement_explain_prints_filters_and_ranking(stack: Stack) -> None:
    out = stratus(stack, "placement", "explain", "--flavor", "m1.tiny", "--image", "tiny")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "RamFilter" in out.stdout and "would go to: compute-" in out.stdout
    reply = ok_json(stack, "placement", "explain", "--flavor", "m1.tiny", "--image", "tiny", "--hint", "a=b")
    assert reply["selected_host"] in {"compute-1", "compute-2"}

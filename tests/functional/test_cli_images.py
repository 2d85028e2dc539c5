"""``stratus image create/set/member/list/delete`` with two projects' tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from services.core.tokens import add_token
from stratus.v1 import images_pb2, servers_pb2
from tests.support.stack import ROOT, Stack


def stratus(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "services.cli.main", *args, "--state-dir", str(stack.state_dir),
           "--token", token]  # fmt: skip
    # COLUMNS: readline, imported by pytest, exports the terminal's width (80) to every child
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120, check=False, text=True, env=env)


def test_share_an_image_from_the_cli(stack: Stack, tmp_path: Path) -> None:
    tokens = stack.state_dir / "tokens.json"
    owner = add_token(tokens, "cli-img-owner", "cli-owner", "owner", ["member"])
    other = add_token(tokens, "cli-img-other", "cli-other", "other", ["member"])
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)

    made = stratus(stack, owner, "image", "create", "cli-vis", "--file", str(disk), "--shared")
    assert made.returncode == 0, made.stderr
    assert "SHARED" in made.stdout
    assert "cli-vis" not in stratus(stack, other, "image", "list").stdout
    added = stratus(stack, owner, "image", "member", "add", "cli-vis", "cli-other")
    assert added.returncode == 0, added.stderr
    assert "cli-other" in stratus(stack, owner, "image", "member", "list", "cli-vis").stdout
    listed = stratus(stack, other, "image", "list")
    assert "VISIBILITY" in listed.stdout and "cli-vis" in listed.stdout and "SHARED" in listed.stdout

    refused = stratus(stack, owner, "image", "set", "cli-vis", "--public")
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr
    both = stratus(stack, owner, "image", "set", "cli-vis", "--public", "--private")
    assert both.returncode == 2 and "at most one" in both.stderr
    private = stratus(stack, owner, "image", "set", "cli-vis", "--private", "--name", "cli-vis-1")
    assert private.returncode == 0 and "PRIVATE" in private.stdout, private.stderr
    assert "cli-vis" not in stratus(stack, other, "image", "list").stdout

    second = stratus(stack, owner, "image", "upload", "cli-vis-2", str(disk))
    assert second.returncode == 0, second.stderr
    deleted = stratus(stack, owner, "image", "delete", "cli-vis-1", "no-such-image", "cli-vis-2")
    assert deleted.returncode == 1 and "1 of 3 images could not be deleted" in deleted.stderr
    assert "NOT_FOUND" in deleted.stderr
    for name in ("cli-vis-1", "cli-vis-2"):
        with pytest.raises(grpc.RpcError) as info:
            stack.images.GetImage(images_pb2.GetImageRequest(id=name), metadata=stack.md())
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_image_names_resolve_in_tiers_from_the_cli(stack: Stack, tmp_path: Path) -> None:
    owner = add_token(stack.state_dir / "tokens.json", "cli-tier-owner", "cli-tier", "owner", ["member"])
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    public_tiny = stack.images.GetImage(images_pb2.GetImageRequest(id="tiny"), metadata=stack.md())
    made = stratus(stack, owner, "image", "create", "tiny", "--file", str(disk), "-f", "json")
    assert made.returncode == 0, made.stderr
    own_tiny = json.loads(made.stdout)["id"]
    try:
        for token, expected in ((owner, own_tiny), (stack.info["token"], public_tiny.id),
                                (stack.info["demo_token"], public_tiny.id)):  # fmt: skip
            out = stratus(stack, token, "server", "create", "cli-tier", "--flavor", "m1.tiny", "--image", "tiny",
                          "-f", "json")  # fmt: skip
            assert out.returncode == 0, out.stderr
            server = json.loads(out.stdout)
            stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server["id"]), metadata=stack.md())
            stack.wait_gone(server["id"])
            assert server["image_id"] == expected
    finally:
        stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=own_tiny), metadata=stack.md())

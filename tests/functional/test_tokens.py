"""Tokens through the API and the CLI: a token made by CreateToken works with its roles, stops at
its expiry (TOKEN_EXPIRED) or at once when revoked (TOKEN_REVOKED); only admins manage tokens; a
bad policy file keeps the api from starting, naming the problem.

Expiry needs a stack whose shortest token lifetime is 1 s (the default is 60 s), so this module
starts a small one of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import flavors_pb2, servers_pb2, tokens_pb2, tokens_pb2_grpc
from tests.support.stack import ROOT, Stack, start_stack


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("tokens")), "--driver", "fake", "--computes", "1",
                    env={"STRATUS_TOKEN_TTL_MIN_S": "1"})  # fmt: skip
    yield s
    assert s.stop() == 0, s.log_tail()


def md(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def refused(stack: Stack, token: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        stack.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=md(token))
    return info.value.code(), reason(info.value)  # type: ignore[attr-defined]


def test_a_token_expires(quick: Stack) -> None:
    stub = tokens_pb2_grpc.TokensStub(quick.channel)
    second = duration_pb2.Duration(seconds=1)
    made = stub.CreateToken(tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=["reader"], ttl=second),
                            metadata=quick.md())  # fmt: skip
    quick.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=md(made.token))
    while time.time() < made.expires_at.seconds + made.expires_at.nanos / 1e9:
        time.sleep(0.1)
    assert refused(quick, made.token) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


def test_revocation_is_immediate(stack: Stack) -> None:
    stub = tokens_pb2_grpc.TokensStub(stack.channel)
    made = stub.CreateToken(tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=["member"]),
                            metadata=stack.md())  # fmt: skip
    assert made.expires_at.seconds - time.time() > 23 * 3600  # the default: a day
    stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=md(made.token))
    revoked = stub.RevokeToken(tokens_pb2.RevokeTokenRequest(id=made.id), metadata=stack.md())
    assert revoked.HasField("revoked_at")
    assert refused(stack, made.token) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    listed = stub.ListTokens(tokens_pb2.ListTokensRequest(project_id="p"), metadata=stack.md())
    assert made.id in {t.id for t in listed.tokens}
    assert made.token not in str(listed)


def test_only_admins_manage_tokens_and_inputs_are_bounded(stack: Stack) -> None:
    stub = tokens_pb2_grpc.TokensStub(stack.channel)
    for request in (tokens_pb2.CreateTokenRequest(project_id="demo", user_id="demo", roles=["admin"]),
                    tokens_pb2.CreateTokenRequest()):  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateToken(request, metadata=stack.md("demo"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    for bad in (["root"], ["reader"] * 9):
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateToken(tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=bad), metadata=stack.md())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as info:
        short = duration_pb2.Duration(seconds=59)
        stub.CreateToken(tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=["reader"], ttl=short),
                         metadata=stack.md())  # fmt: skip
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "ttl" in (info.value.details() or "")  # type: ignore[attr-defined]


def stratus(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "services.cli.main", *args, "--state-dir", str(stack.state_dir)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def ok_json(stack: Stack, *args: str) -> Any:
    out = stratus(stack, *args, "-f", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_token_cli(stack: Stack) -> None:
    project = f"cli-{uuid.uuid4().hex[:6]}"
    made = ok_json(stack, "token", "create", "--project", project, "--user", "u", "--role", "reader",
                   "--role", "member", "--ttl", "2h")  # fmt: skip
    assert made["roles"] == ["reader", "member"] and made["project_id"] == project
    assert abs(int(made["expires_at"][11:13]) - (time.gmtime().tm_hour + 2) % 24) <= 1
    servers = stratus(stack, "server", "list", "--token", made["token"])
    assert servers.returncode == 0, servers.stderr
    listed = ok_json(stack, "token", "list", "--project", project)
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    out = stratus(stack, "token", "revoke", made["id"])
    assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
    after = stratus(stack, "server", "list", "--token", made["token"])
    assert after.returncode == 1 and "UNAUTHENTICATED" in after.stderr and "revoked" in after.stderr, after.stderr
    bad = stratus(stack, "token", "create", "--project", project, "--user", "u", "--role", "reader", "--ttl", "soon")
    assert bad.returncode == 2 and "--ttl" in bad.stderr


def test_a_bad_policy_file_keeps_the_api_from_starting(stack: Stack, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[methods."stratus.v1.Servers"]\nGetServer = "superuser"\nGetSever = "reader"\n')
    cmd = stack.process_argv("api", "policy-check", tmp_path, "--no-seed",
           "--set", f"policy_file={policy}", "--set", "prefix=/policy-check/")  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode != 0
    assert "api refuses to start" in out.stderr and "unknown role 'superuser'" in out.stderr, out.stderr

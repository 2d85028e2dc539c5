"""The stack's admin, demo and service tokens: created once, reused while tokens.json still knows them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from services.core.tokens import TokenFile, add_token
from services.launcher.credentials import ensure_service_token, ensure_tokens
from services.launcher.stackfile import StackInfo


def previous(admin: str, demo: str) -> StackInfo:
    return StackInfo("127.0.0.1:1", [], admin, demo, "/s")


def test_a_fresh_state_dir_gets_an_admin_and_a_demo_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin, demo = ensure_tokens(path, None)
    tokens = TokenFile(path)
    assert tokens.authenticate(admin).roles == frozenset({"admin"})
    assert tokens.authenticate(admin).project_id == "admin"
    assert tokens.authenticate(demo).roles == frozenset({"member"})
    assert tokens.authenticate(demo).project_id == "demo"


def test_tokens_of_the_previous_run_are_kept_while_the_file_knows_them(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin, demo = ensure_tokens(path, None)
    assert ensure_tokens(path, previous(admin, demo)) == (admin, demo)


def test_a_token_the_file_no_longer_knows_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin, demo = ensure_tokens(path, None)
    add_token(path, "demo", "demo", "demo", ["member"])  # demo rotated behind our back
    new_admin, new_demo = ensure_tokens(path, previous(admin, demo))
    assert new_admin == admin
    assert new_demo != demo
    names = [t["name"] for t in json.loads(path.read_text())["tokens"]]
    assert sorted(names) == ["admin", "demo"]


def test_the_service_token_is_written_for_the_computes_and_kept_while_valid(tmp_path: Path) -> None:
    path, token_file = tmp_path / "tokens.json", tmp_path / "service.token"
    token = ensure_service_token(path, token_file)
    assert token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    ctx = TokenFile(path).authenticate(token)
    assert (ctx.project_id, ctx.user_id, ctx.roles) == ("service", "stratus-service", frozenset({"service"}))
    token_file.chmod(0o644)
    assert ensure_service_token(path, token_file) == token  # the same token, the file put right
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    add_token(path, "service", "service", "stratus-service", ["service"])  # rotated behind our back
    assert ensure_service_token(path, token_file) not in ("", token)
    token_file.unlink()
    fresh = ensure_service_token(path, token_file)
    assert token_file.read_text().strip() == fresh
    names = sorted(t["name"] for t in json.loads(path.read_text())["tokens"])
    assert names == ["service"]

"""A state dir's admin and demo tokens survive ``stratus up`` restarts, so a token a user exported
(``STRATUS_TOKEN``) keeps working: ``services/launcher/credentials.py`` keeps them beside
tokens.json, not only in stack.json, which goes when the stack stops."""

from __future__ import annotations

import stat
from pathlib import Path

from services.core.tokens import TokenFile, add_token
from services.launcher.credentials import ensure_tokens
from services.launcher.stackfile import StackInfo


def test_the_tokens_are_the_same_after_a_stop_removed_stack_json(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin, demo = ensure_tokens(path, None)  # the first run
    for name, token in (("admin", admin), ("demo", demo)):
        kept = tmp_path / f"{name}.token"
        assert kept.read_text().strip() == token
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert ensure_tokens(path, None) == (admin, demo)  # the next run: no stack.json to read them from
    assert TokenFile(path).authenticate(admin).roles == frozenset({"admin"})


def test_a_state_dir_of_an_older_release_keeps_the_tokens_of_its_stack_json(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin = add_token(path, "admin", "admin", "admin", ["admin"])
    demo = add_token(path, "demo", "demo", "demo", ["member"])  # no .token files: only stack.json had them
    previous = StackInfo("127.0.0.1:1", [], admin, demo, str(tmp_path))
    assert ensure_tokens(path, previous) == (admin, demo)
    assert (tmp_path / "admin.token").read_text().strip() == admin
    assert ensure_tokens(path, None) == (admin, demo)


def test_a_token_tokens_json_no_longer_knows_is_replaced_and_kept_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin, demo = ensure_tokens(path, None)
    add_token(path, "admin", "admin", "admin", ["admin"])  # an operator rotated it in tokens.json
    new_admin, same_demo = ensure_tokens(path, None)
    assert new_admin != admin and same_demo == demo
    assert ensure_tokens(path, None) == (new_admin, demo)
    (tmp_path / "demo.token").chmod(0o644)
    ensure_tokens(path, None)
    assert stat.S_IMODE((tmp_path / "demo.token").stat().st_mode) == 0o600  # put right

"""The stack's bearer tokens: ``admin`` and ``demo``, kept across restarts while still valid."""

from __future__ import annotations

import json
from pathlib import Path

from services.core.launcher.options import LaunchError
from services.core.launcher.stackfile import StackInfo
from services.core.tokens import add_token, digest

ADMIN = ("admin", "admin", "admin", ["admin", "member"])  # name, project, user, roles
DEMO = ("demo", "demo", "demo", ["member"])


def known_digests(tokens_path: Path) -> dict[str, str]:
    """name -> sha256 of the tokens in the file."""
    try:
        data = json.loads(tokens_path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise LaunchError(f"{tokens_path} is not valid JSON ({exc}); move it away to start afresh") from exc
    return {t.get("name", ""): t.get("sha256", "") for t in data.get("tokens", [])}


def ensure_tokens(tokens_path: Path, previous: StackInfo | None) -> tuple[str, str]:
    """The admin and demo tokens: the previous run's where the file still knows them, else new ones."""
    known = known_digests(tokens_path)
    out = []
    for (name, project, user, roles), old in zip((ADMIN, DEMO), _previous_tokens(previous), strict=True):
        if old and known.get(name) == digest(old):
            out.append(old)
        else:
            out.append(add_token(tokens_path, name, project, user, roles))
    return out[0], out[1]


def _previous_tokens(previous: StackInfo | None) -> tuple[str, str]:
    return (previous.token, previous.demo_token) if previous else ("", "")

"""The stack's bearer tokens, kept across restarts while still valid: ``admin`` and ``demo`` (in
stack.json for clients), and ``service`` for the stack's own processes (the computes read it from
``<state_dir>/service.token``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.core.tokens import add_token, digest
from services.launcher.options import LaunchError
from services.launcher.stackfile import StackInfo

ADMIN = ("admin", "admin", "admin", ["admin"])  # name, project, user, roles (admin implies member, reader)
DEMO = ("demo", "demo", "demo", ["member"])
SERVICE = ("service", "service", "stratus-service", ["service"])
SERVICE_TOKEN_FILE = "service.token"


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


def ensure_service_token(tokens_path: Path, token_file: Path) -> str:
    """The service token: the one in ``token_file`` while the tokens file still knows it, else a new
    one. Written to ``token_file`` (mode 0600) every time, so a file someone removed or widened is
    put right at each start."""
    name, project, user, roles = SERVICE
    try:
        old = token_file.read_text().strip()
    except FileNotFoundError:
        old = ""
    token = old if old and known_digests(tokens_path).get(name) == digest(old) else ""
    token = token or add_token(tokens_path, name, project, user, roles)
    tmp = token_file.with_name(f".{token_file.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file that was there already
    tmp.replace(token_file)
    return token

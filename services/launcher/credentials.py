"""The stack's bearer tokens, kept across restarts while still valid: ``admin`` and ``demo`` (in
stack.json for clients), and ``service`` for the stack's own processes (the computes read it from
``<state_dir>/service.token``).

Each is kept in a file of its own beside tokens.json (``admin.token``, ``demo.token``,
``service.token``, mode 0600 in the 0700 state dir), because stack.json goes when the stack stops:
a token exported from one run (``export STRATUS_TOKEN=...``) works with the next. tokens.json holds
only digests; a token it no longer knows (rotated, the file removed) is replaced by a new one."""

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


def kept_token_path(tokens_path: Path, name: str) -> Path:
    """Where a bootstrap token is kept: ``<name>.token`` beside tokens.json."""
    return tokens_path.with_name(f"{name}.token")


def read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def write_token(path: Path, token: str) -> None:
    """``token`` into ``path``, mode 0600 (put right if someone widened it), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file that was there already
    tmp.replace(path)


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
    """The admin and demo tokens: the ones kept beside tokens.json (else, from a release that kept
    them only in stack.json, the previous run's) while tokens.json still knows them, else new ones.
    Each is written to its file."""
    known = known_digests(tokens_path)
    out = []
    for identity, old_run in zip((ADMIN, DEMO), _previous_tokens(previous), strict=True):
        name, project, user, roles = identity
        path = kept_token_path(tokens_path, name)
        kept = next((t for t in (read_token(path), old_run) if t and known.get(name) == digest(t)), "")
        token = kept or add_token(tokens_path, name, project, user, roles)
        write_token(path, token)
        out.append(token)
    return out[0], out[1]


def _previous_tokens(previous: StackInfo | None) -> tuple[str, str]:
    return (previous.token, previous.demo_token) if previous else ("", "")


def ensure_service_token(tokens_path: Path, token_file: Path) -> str:
    """The service token: the one in ``token_file`` while the tokens file still knows it, else a new
    one. Written to ``token_file`` (mode 0600) every time, so a file someone removed or widened is
    put right at each start."""
    name, project, user, roles = SERVICE
    old = read_token(token_file)
    token = old if old and known_digests(tokens_path).get(name) == digest(old) else ""
    token = token or add_token(tokens_path, name, project, user, roles)
    write_token(token_file, token)
    return token

"""Bearer tokens: their digests, the stack's bootstrap tokens kept in a JSON file in the state dir,
and the shape of the tokens the api issues (``Tokens/CreateToken``, kept in etcd: services/api/identity/tokens.py).

The file holds only sha256 digests of the tokens::

    {"tokens": [{"name": "admin", "sha256": "<hex>", "project_id": "admin",
                 "user_id": "admin", "roles": ["admin"]}]}

``TokenFile`` re-reads the file when it changes, so tokens can be added to a running api. An issued
token is ``<id>.<secret>``: the id finds its record, the digest of the whole token must match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.core.context import RequestContext
from services.core.errors import Unauthenticated

ISSUED_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(token_id: str) -> str:
    """A new issued token for the record ``token_id``."""
    return f"{token_id}.{secrets.token_urlsafe(32)}"


def issued_id(token: str) -> str | None:
    """The record id of an issued token; None for anything else (a bootstrap token has no '.')."""
    token_id, dot, secret = token.partition(".")
    return token_id if dot and secret and ISSUED_ID.match(token_id) else None


@dataclass(frozen=True)
class TokenEntry:
    name: str
    project_id: str
    user_id: str
    roles: tuple[str, ...]


class TokenFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._by_digest: dict[str, TokenEntry] = {}

    def _reload_if_changed(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._by_digest, self._stamp = {}, None
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text())
        self._by_digest = {
            t["sha256"]: TokenEntry(t.get("name", ""), t["project_id"], t["user_id"], tuple(t.get("roles", ())))
            for t in data.get("tokens", [])
        }
        self._stamp = stamp

    def lookup(self, token: str) -> RequestContext | None:
        """Who ``token`` is, or None when the file does not know it."""
        self._reload_if_changed()
        entry = self._by_digest.get(digest(token))
        return None if entry is None else RequestContext(entry.project_id, entry.user_id, frozenset(entry.roles))

    def authenticate(self, token: str) -> RequestContext:
        ctx = self.lookup(token)
        if ctx is None:
            raise Unauthenticated("the bearer token is not valid", reason="BAD_TOKEN")
        return ctx


def add_token(path: Path, name: str, project_id: str, user_id: str, roles: list[str]) -> str:
    """Creates a token, records its digest in the file (replacing one of the same name), returns it."""
    token = secrets.token_urlsafe(32)
    data = json.loads(path.read_text()) if path.exists() else {"tokens": []}
    data["tokens"] = [t for t in data["tokens"] if t.get("name") != name]
    data["tokens"].append(
        {"name": name, "sha256": digest(token), "project_id": project_id, "user_id": user_id, "roles": roles}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token

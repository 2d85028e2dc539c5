"""Opaque page tokens: the last key of the previous page, base64-encoded."""

from __future__ import annotations

import base64
import binascii

from services.core.errors import InvalidArgument


def encode(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def decode(token: str, prefix: str) -> str:
    if not token:
        return ""
    try:
        key = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument([("page_token", "is not a token this API returned")]) from exc
    if not key.startswith(prefix):
        raise InvalidArgument([("page_token", "is not a token this API returned")])
    return key


def encode_at(last_key: str, revision: int) -> str:
    """A token that also carries the revision the listing reads at, so that its pages agree."""
    return encode(f"{revision}@{last_key}")


def decode_at(token: str, prefix: str) -> tuple[str, int]:
    """(the last key, the revision) of a token from ``encode_at``; a token from ``encode`` (no
    revision: read the latest) is still accepted. ("", 0) for the first page."""
    raw = decode(token, "")
    if not raw or raw.startswith(prefix):
        return raw, 0
    revision, sep, key = raw.partition("@")
    if not sep or not revision.isdigit() or not 0 < int(revision) < 2**63 or not key.startswith(prefix):
        raise InvalidArgument([("page_token", "is not a token this API returned")])
    return key, int(revision)


def next_token(cursor: str) -> str:
    """The token of a page that ends at ``cursor`` (the last key it holds); "" (no next page) for ""."""
    return encode(cursor) if cursor else ""

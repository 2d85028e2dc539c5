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

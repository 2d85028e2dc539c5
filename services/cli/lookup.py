"""Paging through List calls, and accepting a name where an id is expected."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import typer

from services.cli import output
from services.cli.client import Api


class Ambiguous(ValueError):
    pass


def pages(api: Api, method: Any, request: Any) -> Iterator[Any]:
    """Every reply of a paged List call, following ``next_page_token`` (a token seen before ends it)."""
    seen: set[str] = set()
    while True:
        reply = api.call(method, request)
        yield reply
        token = reply.next_page_token
        if not token or token in seen:
            return
        seen.add(token)
        request.page_token = token


def list_all(api: Api, method: Any, request: Any, field: str) -> list[Any]:
    """Every item of a paged List call, following ``next_page_token``."""
    return [item for reply in pages(api, method, request) for item in getattr(reply, field)]


def resolve_id(items: Sequence[Any], wanted: str, kind: str) -> str:
    """``wanted`` if it is an id; else the id of the one item so named; else ``wanted`` as given
    (the api then says what is wrong with it)."""
    if any(item.id == wanted for item in items):
        return wanted
    named = [item.id for item in items if item.name == wanted]
    if len(named) > 1:
        raise Ambiguous(f"{len(named)} {kind}s are named {wanted!r}; give an id: {', '.join(named)}")
    return named[0] if named else wanted


def id_for(items: Sequence[Any], wanted: str, kind: str) -> str:
    """``resolve_id`` for a command: an ambiguous name is an error message and exit status 1."""
    try:
        return resolve_id(items, wanted, kind)
    except Ambiguous as exc:
        output.err(f"error: {exc}")
        raise typer.Exit(1) from None

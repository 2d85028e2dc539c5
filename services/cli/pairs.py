"""``KEY=VALUE`` options: parsing for ``--meta``, ``--hint``, ``--spec``, ``--property`` and ``--set``."""

from __future__ import annotations

from collections.abc import Iterable

import typer


def parse_pair(item: str) -> tuple[str, str]:
    """``k=v`` -> (``k``, ``v``); the value may itself hold ``=``. Raises ``ValueError`` on a bad item."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {item!r}")
    return key, value


def parse_pairs(items: Iterable[str]) -> dict[str, str]:
    """Repeated ``k=v`` items as a dict; a later key wins."""
    return dict(parse_pair(item) for item in items)


def pairs_option(items: list[str] | None, option: str) -> dict[str, str]:
    """Parses a repeatable ``KEY=VALUE`` option; a bad item is a usage error (exit 2)."""
    try:
        return parse_pairs(items or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from exc

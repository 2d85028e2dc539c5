"""Deleting several things in one command, as openstack does: each failure is reported, the rest
go on, and the command exits 1 if any failed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import grpc
import typer

from services.cli import output, rpc_errors
from services.cli.lookup import Ambiguous

T = TypeVar("T")


class Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done: list[tuple[str, T]] = []  # (id, what the delete returned)
        self.failed: list[str] = []


def failure_lines(kind: str, wanted: str, exc: Exception) -> list[str]:
    head = f"error: cannot delete {kind} {wanted!r}"
    if isinstance(exc, grpc.RpcError):
        code, details = exc.code().name, exc.details() or ""
        lines = rpc_errors.describe(code, details, rpc_errors.status_of(exc))
        return [f"{head}: {lines[0].removeprefix('error: ')}", *lines[1:]]
    return [f"{head}: {exc}"]


def delete_each(
    kind: str, wanted: Sequence[str], resolve: Callable[[str], str], delete: Callable[[str], T]
) -> Outcome[T]:
    """``delete(resolve(w))`` for each ``w``; a failure (an api error or an ambiguous name) is
    reported on stderr and the next one is tried."""
    outcome: Outcome[T] = Outcome()
    for item in wanted:
        try:
            ident = resolve(item)
            outcome.done.append((ident, delete(ident)))
        except (grpc.RpcError, Ambiguous) as exc:
            outcome.failed.append(item)
            for line in failure_lines(kind, item, exc):
                output.err(line)
    return outcome


def exit_if_failed(kind: str, total: int, outcome: Outcome[T]) -> None:
    if outcome.failed:
        if total > 1:
            output.err(f"error: {len(outcome.failed)} of {total} {kind}s could not be deleted")
        raise typer.Exit(1)

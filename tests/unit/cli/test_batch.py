"""Deleting several things: each failure reported, the rest deleted, exit 1 if any failed."""

from __future__ import annotations

import grpc
import pytest
import typer

from services.cli import batch
from services.cli.lookup import resolve_id


class NotFound(grpc.RpcError):  # type: ignore[misc]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.NOT_FOUND

    def details(self) -> str:
        return "server 'nope' not found"

    def trailing_metadata(self) -> tuple[()]:
        return ()


class Named:
    def __init__(self, id: str, name: str) -> None:
        self.id, self.name = id, name


def test_each_failure_is_reported_and_the_rest_are_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    known = [Named("a", "web"), Named("b", "db"), Named("c", "db")]
    deleted: list[str] = []

    def delete(ident: str) -> str:
        if ident == "nope":
            raise NotFound()
        deleted.append(ident)
        return ident

    outcome = batch.delete_each("server", ["web", "nope", "db", "b"], lambda w: resolve_id(known, w, "server"), delete)
    assert deleted == ["a", "b"] and [ident for ident, _ in outcome.done] == ["a", "b"]
    assert outcome.failed == ["nope", "db"]
    err = capsys.readouterr().err
    assert "cannot delete server 'nope': NOT_FOUND: server 'nope' not found" in err
    assert "cannot delete server 'db': 2 servers are named 'db'; give an id" in err
    with pytest.raises(typer.Exit) as info:
        batch.exit_if_failed("server", 4, outcome)
    assert info.value.exit_code == 1
    assert "2 of 4 servers could not be deleted" in capsys.readouterr().err


def test_all_deleted_is_success() -> None:
    outcome = batch.delete_each("flavor", ["x"], lambda w: w, lambda ident: ident)
    batch.exit_if_failed("flavor", 1, outcome)  # no exit
    assert outcome.failed == []

"""User commands refuse bad input before talking to any api (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        ["server", "create", "vm", "--flavor", "f", "--image", "i", "--meta", "novalue"],
        ["server", "create", "vm", "--flavor", "f", "--image", "i", "--hint", "=x"],
        ["server", "create", "vm", "--image", "i"],
        ["server", "list", "-f", "xml"],
        ["flavor", "create", "f", "--vcpus", "0", "--ram", "64", "--disk", "1"],
        ["flavor", "create", "f", "--vcpus", "1", "--ram", "64", "--disk", "1", "--spec", "x"],
        ["image", "upload", "img", "/no/such/file"],
        ["server", "delete"],
    ],
)
def test_bad_input_is_a_usage_error(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output


def test_no_stack_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRATUS_API", "STRATUS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["server", "list", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "stratus up" in result.output

"""User commands refuse bad input before talking to any api (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import client
from services.cli.main import app
from services.launcher.stackfile import StackInfo, stack_path, write_stack

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


def test_the_stack_token_for_another_api_is_a_usage_error_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("STRATUS_API", "STRATUS_TOKEN", "STRATUS_CA_CERT"):
        monkeypatch.delenv(name, raising=False)
    write_stack(stack_path(tmp_path), StackInfo("127.0.0.1:8774", [], "admin-token", "d", str(tmp_path)))

    def no_channel(*_args: object) -> None:
        raise AssertionError("a channel was opened")

    monkeypatch.setattr(client, "open_channel", no_channel)
    result = runner.invoke(app, ["server", "list", "--api", "127.0.0.1:9", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 127.0.0.1:9 (from --api) is not an api of the stack")
    assert "pass --token or set STRATUS_TOKEN" in lines[0] and "admin-token" not in result.output

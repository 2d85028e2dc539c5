"""``--token``, ``--api``, ``--state-dir``, ``--ca-cert`` and ``-f`` before the command work as after
it (``stratus --token T server list`` is ``stratus server list --token T``); the command's own wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import options
from services.cli.main import app
from services.launcher.stackfile import StackInfo, stack_path, write_stack
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2
from tests.unit.cli.fakes import serve

runner = CliRunner()
ANSWERS = {
    "ListServers": lambda _r: servers_pb2.ListServersResponse(servers=[servers_pb2.Server(id="s1", name="web")]),
    "ListFlavors": lambda _r: flavors_pb2.ListFlavorsResponse(),
    "ListImages": lambda _r: images_pb2.ListImagesResponse(),
}


def stack_dir(tmp_path: Path, api: str = "127.0.0.1:8774", token: str = "stack-token") -> Path:
    write_stack(stack_path(tmp_path), StackInfo(api, [], token, "demo-token", str(tmp_path)))
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["--api", "10.0.0.1:1", "--token", "T", "server", "list"],
        ["server", "list", "--api", "10.0.0.1:1", "--token", "T"],
        ["--token", "T", "server", "list", "--api", "10.0.0.1:1"],
        ["--api", "10.0.0.1:1", "server", "list", "--token", "T"],
    ],
)
def test_api_and_token_before_or_after_the_command(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    channel, targets = serve(monkeypatch, ANSWERS)
    result = runner.invoke(app, [*args, "--state-dir", "/nonexistent"])
    assert result.exit_code == 0, result.output
    assert [(t.api, t.token, t.source) for t in targets] == [("10.0.0.1:1", "T", "--api")]
    assert {tuple(md) for _, _, md in channel.calls} == {(("authorization", "Bearer T"),)}


def test_the_commands_own_option_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    _, targets = serve(monkeypatch, ANSWERS)
    args = ["--api", "10.0.0.1:1", "--token", "before", "server", "list", "--token", "after", "--api", "10.0.0.2:2"]
    assert runner.invoke(app, args).exit_code == 0
    assert [(t.api, t.token) for t in targets] == [("10.0.0.2:2", "after")]


def test_state_dir_before_the_command_finds_its_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, targets = serve(monkeypatch, ANSWERS)
    result = runner.invoke(app, ["--state-dir", str(stack_dir(tmp_path)), "server", "list"])
    assert result.exit_code == 0, result.output
    assert [(t.api, t.token) for t in targets] == [("127.0.0.1:8774", "stack-token")]


def test_ca_cert_before_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, targets = serve(monkeypatch, ANSWERS)
    args = ["--ca-cert", "/some/ca.pem", "server", "list", "--api", "10.0.0.1:1", "--token", "T"]
    assert runner.invoke(app, [*args, "--state-dir", str(tmp_path)]).exit_code == 0
    assert targets[0].ca_cert == Path("/some/ca.pem")


def test_format_before_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    serve(monkeypatch, ANSWERS)
    base = ["--state-dir", str(stack_dir(tmp_path))]
    listed = runner.invoke(app, ["-f", "json", *base, "server", "list"])
    assert listed.exit_code == 0, listed.output
    assert [s["name"] for s in json.loads(listed.stdout)] == ["web"]
    own = runner.invoke(app, ["-f", "json", *base, "server", "list", "-f", "value", "-c", "name"])
    assert own.stdout == "web\n"  # the command's -f wins


def test_nothing_given_before_one_command_leaks_into_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    _, targets = serve(monkeypatch, ANSWERS)
    runner.invoke(app, ["--api", "10.0.0.1:1", "--token", "T", "server", "list"])
    assert options.given().api is None  # reset once the command is done
    result = runner.invoke(app, ["server", "list", "--state-dir", "/nonexistent"])
    assert result.exit_code == 1 and "no stack found" in result.output
    assert len(targets) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--token", "T", "api"], "go after `api`"),
        (["--api", "a:1", "compute"], "go after `compute`"),
        (["--token", "T", "up"], "`stratus up` takes only --state-dir before it"),
        (["-f", "json", "up"], "`stratus up` takes only --state-dir before it"),
    ],
)
def test_options_for_a_stack_before_up_or_a_process_are_refused(args: list[str], says: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())


def test_state_dir_before_up_is_ups_state_dir(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["--state-dir", str(tmp_path / "here"), "up", "--help"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0
    assert str(tmp_path / "here") in shown.output  # the default `up` would use

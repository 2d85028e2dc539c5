"""``-f table|json|yaml|value`` and ``-c COLUMN`` as python-openstackclient has them."""

from __future__ import annotations

import inspect
import json
from typing import Annotated

import pytest
import typer
import yaml
from typer.testing import CliRunner

from services.cli import columns, output
from services.cli.main import app, loaded
from services.cli.output import Format
from services.cli.servers import server_columns, server_rows
from stratus.v1 import servers_pb2

ACTIVE = servers_pb2.SERVER_STATUS_ACTIVE
SERVERS = [
    servers_pb2.Server(id="a", name="web", status=ACTIVE, flavor_id="f1", image_id="i1", project_id="p1"),
    servers_pb2.Server(id="b", name="db", flavor_id="f2", image_id="i2", project_id="p2"),
]


def test_value_prints_the_chosen_columns_bare(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_list(Format.value, server_columns(), SERVERS, ["ID", "name", "Status"])
    assert capsys.readouterr().out == "a web ACTIVE\nb db \n"


def test_value_without_columns_prints_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_list(Format.value, server_columns(), SERVERS[:1], [])
    assert capsys.readouterr().out == "a web ACTIVE    f1 i1\n"  # empty task, power and host


def test_a_table_shows_only_the_chosen_columns(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_list(Format.table, server_columns(), SERVERS, ["name"])
    out = capsys.readouterr().out
    assert "NAME" in out and "web" in out and "ID" not in out and "ACTIVE" not in out


def test_an_unknown_column_is_an_error_naming_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.BadParameter, match=r"no column 'colour'.*ID, NAME, STATUS"):
        output.emit_list(Format.table, server_columns(), SERVERS, ["colour"])
    with pytest.raises(typer.BadParameter, match="flavor_id"):
        output.emit_list(Format.json, server_columns(), SERVERS, ["flavour"])
    assert capsys.readouterr().out == ""  # nothing printed before the error


def test_json_and_yaml_select_fields(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_list(Format.json, server_columns(), SERVERS, ["ID", "status"])
    assert json.loads(capsys.readouterr().out) == [{"id": "a", "status": "ACTIVE"}, {"id": "b", "status": None}]
    output.emit_list(Format.yaml, server_columns(), SERVERS, [])
    listed = yaml.safe_load(capsys.readouterr().out)
    assert [s["name"] for s in listed] == ["web", "db"] and listed[0]["status"] == "ACTIVE"
    output.emit_one(Format.yaml, SERVERS[0], server_rows, ["project_id"])
    assert yaml.safe_load(capsys.readouterr().out) == {"project_id": "p1"}


def test_show_value_prints_one_value_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_one(Format.value, SERVERS[0], server_rows, ["status", "ID"])
    assert capsys.readouterr().out == "ACTIVE\na\n"
    output.emit_one(Format.table, SERVERS[0], server_rows, ["flavor_id"])
    out = capsys.readouterr().out
    assert "f1" in out and "web" not in out


def test_server_lists_show_names_and_with_all_projects_the_project(capsys: pytest.CaptureFixture[str]) -> None:
    columns = server_columns({"f1": "m1.tiny"}, {"i2": "cirros"}, all_projects=True)
    output.emit_list(Format.value, columns, SERVERS, ["name", "flavor", "image", "project"])
    assert capsys.readouterr().out == "web m1.tiny i1 p1\ndb f2 cirros p2\n"  # the id where no name is known
    assert "PROJECT" not in [header for header, _ in server_columns()]


def test_emit_data_for_commands_that_are_neither_list_nor_show(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_data(Format.value, {"selected_host": "compute-1", "hosts": [{"host": "compute-1"}]}, [])
    assert capsys.readouterr().out == 'compute-1\n[{"host": "compute-1"}]\n'


def commands(group: object, path: str = "") -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for name, command in getattr(group, "commands", {}).items():
        found += commands(command, f"{path} {name}")
    if not hasattr(group, "commands"):
        found.append((path.strip(), [opt for p in group.params for opt in getattr(p, "opts", [])]))  # type: ignore[attr-defined]
    return found


def test_every_command_with_format_takes_columns() -> None:
    every = commands(loaded(typer.main.get_command(app)))  # every command made, not deferred
    with_format = [(name, opts) for name, opts in every if "--format" in opts]
    assert {"server list", "server show", "flavor list", "image list", "server-group show", "host list"} <= {
        name for name, _ in with_format
    }
    assert [name for name, opts in with_format if "-c" not in opts] == []


def test_columns_are_chosen_on_the_command_line() -> None:
    result = CliRunner().invoke(app, ["server", "list", "-c", "ID", "-f", "value", "--state-dir", "/nonexistent"])
    assert result.exit_code == 1  # no stack: the option itself was taken
    assert output.selected_columns() == ["ID"]
    CliRunner().invoke(app, ["flavor", "list", "--state-dir", "/nonexistent"])
    assert output.selected_columns() == []  # reset for the next command


def test_version_and_unknown_status() -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("stratus ")
    refused = runner.invoke(app, ["server", "list", "--status", "sideways"])
    assert refused.exit_code == 2
    assert "ACTIVE" in refused.output and "SHUTOFF" in refused.output


def test_a_command_with_its_own_c_keeps_it() -> None:
    def own(
        fmt: output.FormatOpt = Format.table,
        checksum: Annotated[str, typer.Option("-c", "--checksum")] = "",
    ) -> None:
        pass

    def plain(fmt: output.FormatOpt = Format.table) -> None:
        pass

    assert columns.with_columns(own) is own
    assert "columns" in inspect.signature(columns.with_columns(plain)).parameters

"""Output: JSON with the protos' field names (lists as arrays) and enum words as in the tables."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from services.cli import output
from services.cli.output import Format
from services.cli.servers import COLUMNS, server_rows
from stratus.v1 import hosts_pb2, servers_pb2, services_pb2


def test_enum_labels_drop_the_type_prefix() -> None:
    server = servers_pb2.Server(status=servers_pb2.SERVER_STATUS_ACTIVE, task_state=servers_pb2.TASK_STATE_SPAWNING)
    assert output.enum_label(server, "status") == "ACTIVE"
    assert output.enum_label(server, "task_state") == "SPAWNING"
    assert output.enum_label(server, "vm_state") == ""
    host = hosts_pb2.Host(state=services_pb2.SERVICE_STATE_UP)
    assert output.enum_label(host, "state") == "UP"


def test_a_list_is_a_json_array_with_proto_field_names(capsys: pytest.CaptureFixture[str]) -> None:
    servers = [
        servers_pb2.Server(id="a", flavor_id="f1"),
        servers_pb2.Server(id="b", vm_state=servers_pb2.VM_STATE_ERROR),
    ]
    output.emit_list(Format.json, COLUMNS, servers)
    data = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in data] == ["a", "b"]
    assert data[0]["flavor_id"] == "f1"
    assert data[1]["vm_state"] == "ERROR"
    assert data[0]["vm_state"] is None  # unspecified


def test_one_item_is_a_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_one(Format.json, servers_pb2.Server(id="a", metadata={"k": "v"}), server_rows)
    assert json.loads(capsys.readouterr().out)["metadata"] == {"k": "v"}


def test_tables_show_every_id_whole(capsys: pytest.CaptureFixture[str]) -> None:
    server_id = "01a201ad-eb0b-71d1-9ade-76252cb9c6c9"
    output.emit_list(Format.table, COLUMNS, [servers_pb2.Server(id=server_id, name="[bold]x")])
    out = capsys.readouterr().out
    assert server_id in out
    assert "[bold]x" in out  # names are text, not markup


def test_the_fault_shows_in_the_server_fields() -> None:
    server = servers_pb2.Server(id="a", fault=servers_pb2.Fault(code="NO_VALID_HOST", message="no host"))
    assert ("fault", "NO_VALID_HOST: no host") in server_rows(server)


def test_enum_words_everywhere_in_json() -> None:
    event = servers_pb2.ServerEvent(
        type=servers_pb2.SERVER_EVENT_TYPE_DELETED,
        server=servers_pb2.Server(
            status=servers_pb2.SERVER_STATUS_VERIFY_RESIZE, task_state=servers_pb2.TASK_STATE_SPAWNING
        ),
    )
    data = output.to_dict(event)
    assert data["type"] == "DELETED"
    assert (data["server"]["status"], data["server"]["task_state"]) == ("VERIFY_RESIZE", "SPAWNING")
    running = servers_pb2.Server(power_state=servers_pb2.POWER_STATE_RUNNING)
    assert output.to_dict(servers_pb2.ListServersResponse(servers=[running]))["servers"][0]["power_state"] == "RUNNING"
    assert output.to_dict(servers_pb2.Server(status=cast(Any, 99)))["status"] == 99  # unknown: the number the api sent

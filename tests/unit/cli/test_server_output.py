"""``server list`` and ``server show`` in json and yaml carry the names their tables show
(``flavor_name``, ``image_name`` beside the ids), and ``--wait`` reports each change of status and
task as a line on stderr while stdout keeps only the result."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
import yaml
from typer.testing import CliRunner

from services.cli import output, waiting
from services.cli.main import app
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2
from tests.unit.cli.fakes import RpcFailure, serve

runner = CliRunner()
ACTIVE, BUILD = servers_pb2.SERVER_STATUS_ACTIVE, servers_pb2.SERVER_STATUS_BUILD
SERVERS = [
    servers_pb2.Server(id="s1", name="web", status=ACTIVE, flavor_id="f1", image_id="i1"),
    servers_pb2.Server(id="s2", name="db", status=ACTIVE, flavor_id="f2", image_id="gone"),
]
FLAVORS = [flavors_pb2.Flavor(id="f1", name="m1.tiny"), flavors_pb2.Flavor(id="f2", name="m1.small")]
IMAGES = [images_pb2.Image(id="i1", name="tiny")]
TARGET = ["--api", "127.0.0.1:1", "--token", "t"]


def by_id(items: list[Any]) -> Any:
    def get(request: Any) -> Any:
        for item in items:
            if item.id == request.id:
                return item
        raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"{request.id} not found", "NOT_FOUND")

    return get


ANSWERS = {
    "ListServers": lambda _r: servers_pb2.ListServersResponse(servers=SERVERS),
    "GetServer": by_id(SERVERS),
    "ListFlavors": lambda _r: flavors_pb2.ListFlavorsResponse(flavors=FLAVORS),
    "GetFlavor": by_id(FLAVORS),
    "ListImages": lambda _r: images_pb2.ListImagesResponse(images=IMAGES),
    "GetImage": by_id(IMAGES),
}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_list_carries_the_names_beside_the_ids(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    serve(monkeypatch, ANSWERS)
    result = runner.invoke(app, ["server", "list", "-f", fmt, *TARGET])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert [(s["flavor_id"], s["flavor_name"], s["image_id"], s["image_name"]) for s in listed] == [
        ("f1", "m1.tiny", "i1", "tiny"),
        ("f2", "m1.small", "gone", None),  # an image that is gone: no name, not its id
    ]
    keys = list(listed[0])
    assert keys.index("flavor_name") == keys.index("flavor_id") + 1
    assert keys.index("image_name") == keys.index("image_id") + 1


def test_list_json_takes_the_names_as_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, ANSWERS)
    result = runner.invoke(app, ["server", "list", "-f", "json", "-c", "name", "-c", "flavor_name", *TARGET])
    listed = json.loads(result.stdout)
    assert listed == [{"name": "web", "flavor_name": "m1.tiny"}, {"name": "db", "flavor_name": "m1.small"}]


def test_list_json_without_the_names_does_not_ask_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    channel, _ = serve(monkeypatch, ANSWERS)
    result = runner.invoke(app, ["server", "list", "-f", "json", "-c", "id", *TARGET])
    assert json.loads(result.stdout) == [{"id": "s1"}, {"id": "s2"}]
    assert [name for name, _, _ in channel.calls] == ["ListServers"]


def test_show_carries_the_names_in_every_format(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, ANSWERS)
    shown = runner.invoke(app, ["server", "show", "s1", "-f", "json", *TARGET])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert (data["flavor_name"], data["image_name"]) == ("m1.tiny", "tiny")
    table = runner.invoke(app, ["server", "show", "s1", *TARGET]).stdout
    assert "flavor_name" in table and "m1.tiny" in table and "image_name" in table
    value = runner.invoke(app, ["server", "show", "s1", "-f", "value", "-c", "image_name", *TARGET]).stdout
    assert value == "tiny\n"
    gone = json.loads(runner.invoke(app, ["server", "show", "s2", "-f", "json", *TARGET]).stdout)
    assert (gone["flavor_name"], gone["image_name"]) == ("m1.small", None)


def test_with_extra_puts_a_name_after_its_id() -> None:
    data = {"id": "s", "flavor_id": "f", "image_id": "i", "status": "ACTIVE"}
    more = {"image_name": "tiny", "flavor_name": "m1", "other": 1}
    assert list(output.with_extra(data, more)) == ["id", "flavor_id", "flavor_name", "image_id", "image_name",
                                                   "status", "other"]  # fmt: skip


# ---- --wait: a line per change, on stderr --------------------------------------------------------
def server(status: Any, task: Any = servers_pb2.TASK_STATE_UNSPECIFIED) -> servers_pb2.Server:
    return servers_pb2.Server(id="s1", name="web", status=status, task_state=task, flavor_id="f1", image_id="i1")


SPAWNING = servers_pb2.TASK_STATE_SPAWNING
SCHEDULING = servers_pb2.TASK_STATE_SCHEDULING
STATES = [server(BUILD, SCHEDULING), server(BUILD, SCHEDULING), server(BUILD, SPAWNING), server(ACTIVE)]


def watch_answers() -> dict[str, Any]:
    events = [servers_pb2.ServerEvent(server=s, revision=i + 1) for i, s in enumerate(STATES)]
    return {
        **ANSWERS,
        "CreateServer": lambda _r: STATES[0],
        "WatchServers": lambda _r: events,
        "GetServer": lambda _r: STATES[-1],
        "GetImage": lambda _r: IMAGES[0],
    }


def test_wait_for_reports_each_change_once(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, watch_answers())
    lines: list[str] = []
    from services.cli.client import open_api

    with open_api("127.0.0.1:1", "t", None) as api:
        final = waiting.wait_for(api, "s1", lambda s: s is not None and s.status == ACTIVE, 10.0, lines.append)
    assert final is not None and final.status == ACTIVE
    said = [line.split("s ", 1)[1] for line in lines]  # without the elapsed seconds
    assert said == ["server web (s1): BUILD (scheduling)", "server web (s1): BUILD (spawning)",
                    "server web (s1): ACTIVE"]  # fmt: skip


def test_create_wait_keeps_stdout_parseable(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, watch_answers())
    result = runner.invoke(app, ["server", "create", "web", "--flavor", "f1", "--image", "i1", "--wait", "-f", "json",
                                 *TARGET])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "ACTIVE"
    progress = result.stderr.strip().splitlines()
    assert [line.split(": ", 1)[1] for line in progress] == ["BUILD (scheduling)", "BUILD (spawning)", "ACTIVE"]
    assert all(line.lstrip().split("s ", 1)[0].replace(".", "").isdigit() for line in progress)  # "  0.1s ..."

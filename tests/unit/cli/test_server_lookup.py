"""Servers by unique name: one filtered ListServers; an id is taken as it is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
import typer

from services.cli.client import Api
from services.cli.server_lookup import resolve_server
from stratus.v1 import servers_pb2


class FakeApi:
    def __init__(self, *servers: servers_pb2.Server) -> None:
        self.all = list(servers)
        self.filters: list[str] = []
        self.servers = SimpleNamespace(ListServers="ListServers")

    def call(self, method: str, request: Any) -> servers_pb2.ListServersResponse:
        self.filters.append(request.filter)
        wanted = request.filter.partition("=")[2].strip('"')
        found = [s for s in self.all if not request.filter or s.name == wanted]
        return servers_pb2.ListServersResponse(servers=found)


def test_a_name_is_looked_up_with_one_filtered_list() -> None:
    api = FakeApi(servers_pb2.Server(id="a1", name="web"), servers_pb2.Server(id="b2", name="db"))
    assert resolve_server(cast(Api, api), "web") == "a1"
    assert api.filters == ['name="web"']
    assert resolve_server(cast(Api, api), "nope") == "nope"  # the api then says NOT_FOUND


def test_an_id_costs_no_call_and_odd_names_list_everything() -> None:
    api = FakeApi(servers_pb2.Server(id="a1", name='say "hi"'))
    assert (
        resolve_server(cast(Api, api), "01a2378b-6e9b-72ab-90eb-6c20f3aa3907") == "01a2378b-6e9b-72ab-90eb-6c20f3aa3907"
    )
    assert api.filters == []
    assert resolve_server(cast(Api, api), 'say "hi"') == "a1"
    assert api.filters == [""]


def test_an_ambiguous_name_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(servers_pb2.Server(id="a1", name="web"), servers_pb2.Server(id="a2", name="web"))
    with pytest.raises(typer.Exit) as info:
        resolve_server(cast(Api, api), "web")
    assert info.value.exit_code == 1 and "give an id: a1, a2" in capsys.readouterr().err

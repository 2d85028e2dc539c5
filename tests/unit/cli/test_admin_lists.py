"""``stratus host list``, ``service list`` and ``aggregate list`` follow next_page_token: they show
every page, not the first one only."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli import admin, aggregates
from services.cli.main import app
from stratus.v1 import aggregates_pb2, hosts_pb2, services_pb2

PAGES = 3


class PagedAdmin:
    """One host, service and aggregate a page, ``PAGES`` pages; the page token is the page's number."""

    def __init__(self) -> None:
        self.hosts = SimpleNamespace(ListHosts="hosts")
        self.services = SimpleNamespace(ListServices="services")
        self.aggregates = SimpleNamespace(ListAggregates="aggregates")
        self.tokens: list[str] = []

    def call(self, method: str, request: Any) -> Any:
        self.tokens.append(request.page_token)
        n = int(request.page_token or 0)
        token = str(n + 1) if n + 1 < PAGES else ""
        if method == "hosts":
            return hosts_pb2.ListHostsResponse(hosts=[hosts_pb2.Host(host=f"h{n}")], next_page_token=token)
        if method == "services":
            alarm = services_pb2.StoreAlarm(alarm="NOSPACE", message=f"etcd is full ({n})")
            service = services_pb2.Service(binary="compute", host=f"h{n}")
            return services_pb2.ListServicesResponse(services=[service], store_alarms=[alarm], next_page_token=token)
        aggregate = aggregates_pb2.Aggregate(id=f"a{n}", name=f"agg{n}")
        return aggregates_pb2.ListAggregatesResponse(aggregates=[aggregate], next_page_token=token)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> PagedAdmin:
    fake = PagedAdmin()
    for module in (admin, aggregates):
        monkeypatch.setattr(module, "open_api", lambda *_: contextlib.nullcontext(fake))
    return fake


@pytest.mark.parametrize(("command", "field", "wanted"), [
    ("host", "host", ["h0", "h1", "h2"]),
    ("service", "host", ["h0", "h1", "h2"]),
    ("aggregate", "id", ["a0", "a1", "a2"]),
])  # fmt: skip
def test_lists_show_every_page(api: PagedAdmin, command: str, field: str, wanted: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "list", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [row[field] for row in json.loads(result.stdout)] == wanted
    assert api.tokens == ["", "1", "2"]


def test_service_list_warns_of_the_alarms_once(api: PagedAdmin) -> None:
    result = CliRunner().invoke(app, ["service", "list", "-f", "json"])
    assert result.exit_code == 0 and result.stderr.count("warning:") == 1 and "etcd is full (2)" in result.stderr

"""Every public list is bounded by count (and bytes) on the session stack: ListHosts, ListServices
and ListAggregates page through next_page_token, one item a page, and give each item once; the CLI
follows the tokens past the default page of 50."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stratus.v1 import aggregates_pb2, hosts_pb2, services_pb2
from tests.functional.test_cli_scheduling import ok_json
from tests.support.stack import Stack

Call = Callable[[Any], Any]


def every_page(call: Call, request: Any, field: str) -> list[list[Any]]:
    pages: list[list[Any]] = []
    while True:
        reply = call(request)
        pages.append(list(getattr(reply, field)))
        if not reply.next_page_token:
            return pages
        assert len(pages) < 1000, "the pages never end"
        request.page_token = reply.next_page_token


@contextmanager
def aggregates(stack: Stack, count: int) -> Iterator[list[str]]:
    """``count`` new aggregates (their ids), deleted afterwards."""
    made: list[str] = []
    try:
        for _ in range(count):
            aggregate = aggregates_pb2.Aggregate(name=f"bound-{uuid.uuid4().hex[:8]}")
            request = aggregates_pb2.CreateAggregateRequest(aggregate=aggregate)
            made.append(stack.aggregates.CreateAggregate(request, metadata=stack.md()).id)
        yield made
    finally:
        for aggregate_id in made:
            gone = aggregates_pb2.DeleteAggregateRequest(id=aggregate_id)
            stack.aggregates.DeleteAggregate(gone, metadata=stack.md())


def test_hosts_page_one_at_a_time(stack: Stack) -> None:
    def call(request: Any) -> Any:
        return stack.hosts.ListHosts(request, metadata=stack.md())

    pages = every_page(call, hosts_pb2.ListHostsRequest(page_size=1), "hosts")
    names = [h.host for page in pages for h in page]
    assert all(len(page) == 1 for page in pages) and len(pages) >= 2
    assert names == sorted(set(names)) and {"compute-1", "compute-2"} <= set(names)
    everything = call(hosts_pb2.ListHostsRequest())
    assert [h.host for h in everything.hosts] == names and not everything.next_page_token


def test_services_page_one_at_a_time(stack: Stack) -> None:
    def call(request: Any) -> Any:
        return stack.services.ListServices(request, metadata=stack.md())

    pages = every_page(call, services_pb2.ListServicesRequest(page_size=1), "services")
    names = [f"{s.binary}/{s.host}" for page in pages for s in page]
    assert all(len(page) == 1 for page in pages) and len(names) == len(set(names)) >= 5
    assert names == [f"{s.binary}/{s.host}" for s in call(services_pb2.ListServicesRequest()).services]
    computes = every_page(call, services_pb2.ListServicesRequest(binary="compute", page_size=1), "services")
    assert [f"compute/{s.host}" for page in computes for s in page] == [n for n in names if n.startswith("compute/")]


def test_aggregates_page_one_at_a_time(stack: Stack) -> None:
    def call(request: Any) -> Any:
        return stack.aggregates.ListAggregates(request, metadata=stack.md())

    with aggregates(stack, 3) as made:
        pages = every_page(call, aggregates_pb2.ListAggregatesRequest(page_size=1), "aggregates")
        ids = [a.id for page in pages for a in page]
        assert all(len(page) == 1 for page in pages) and ids == sorted(set(ids)) and set(made) <= set(ids)
        assert [a.id for a in call(aggregates_pb2.ListAggregatesRequest()).aggregates] == ids


def test_the_cli_lists_past_the_first_page(stack: Stack) -> None:
    with aggregates(stack, 55) as made:  # more than a page of the default 50
        first = stack.aggregates.ListAggregates(aggregates_pb2.ListAggregatesRequest(), metadata=stack.md())
        assert len(first.aggregates) == 50 and first.next_page_token
        listed = [row["id"] for row in ok_json(stack, "aggregate", "list")]
        assert set(made) <= set(listed) and len(listed) == len(set(listed))
    hosts = [row["host"] for row in ok_json(stack, "host", "list")]
    assert hosts == [h.host for h in stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts]
    services = ok_json(stack, "service", "list")
    assert len(services) >= 5

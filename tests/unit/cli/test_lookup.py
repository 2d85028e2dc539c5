"""Paging through List calls and taking a name where an id is expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from services.cli.client import Api
from services.cli.lookup import Ambiguous, list_all, resolve_id
from stratus.v1 import flavors_pb2


@dataclass
class Named:
    id: str
    name: str


def test_an_id_is_taken_as_is_and_a_name_becomes_its_id() -> None:
    items = [Named("f1", "m1.tiny"), Named("f2", "m1.small")]
    assert resolve_id(items, "f2", "flavor") == "f2"
    assert resolve_id(items, "m1.tiny", "flavor") == "f1"
    assert resolve_id(items, "unknown", "flavor") == "unknown"  # the api says what is wrong


def test_a_name_two_items_share_must_be_an_id() -> None:
    with pytest.raises(Ambiguous, match="give an id"):
        resolve_id([Named("a", "x"), Named("b", "x")], "x", "image")


class PagedApi:
    """Pages of two flavors, the last without a next_page_token."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tokens: list[str] = []

    def call(self, method: Any, request: flavors_pb2.ListFlavorsRequest) -> flavors_pb2.ListFlavorsResponse:
        self.tokens.append(request.page_token)
        start = int(request.page_token or 0)
        end = min(start + 2, self.total)
        flavors = [flavors_pb2.Flavor(id=str(i)) for i in range(start, end)]
        return flavors_pb2.ListFlavorsResponse(flavors=flavors, next_page_token=str(end) if end < self.total else "")


def test_list_all_follows_next_page_token_to_the_end() -> None:
    api = PagedApi(5)
    items = list_all(cast(Api, api), None, flavors_pb2.ListFlavorsRequest(), "flavors")
    assert [f.id for f in items] == ["0", "1", "2", "3", "4"]
    assert api.tokens == ["", "2", "4"]


def test_list_all_stops_if_a_page_token_comes_back() -> None:
    class Stuck:
        def call(self, method: Any, request: Any) -> flavors_pb2.ListFlavorsResponse:
            return flavors_pb2.ListFlavorsResponse(flavors=[flavors_pb2.Flavor(id="x")], next_page_token="same")

    items = list_all(cast(Api, Stuck()), None, flavors_pb2.ListFlavorsRequest(), "flavors")
    assert len(items) == 2

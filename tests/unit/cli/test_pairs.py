"""KEY=VALUE parsing for --meta, --hint, --spec, --property and --set."""

from __future__ import annotations

import pytest
import typer

from services.cli.pairs import pairs_option, parse_pair, parse_pairs


def test_a_pair_splits_on_the_first_equals_sign() -> None:
    assert parse_pair("k=v") == ("k", "v")
    assert parse_pair("url=http://x/?a=b") == ("url", "http://x/?a=b")
    assert parse_pair("empty=") == ("empty", "")


@pytest.mark.parametrize("item", ["novalue", "=v", " =v", ""])
def test_a_pair_needs_a_key_and_an_equals_sign(item: str) -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_pair(item)


def test_repeated_pairs_make_a_dict_where_the_later_key_wins() -> None:
    assert parse_pairs(["a=1", "b=2", "a=3"]) == {"a": "3", "b": "2"}
    assert parse_pairs([]) == {}


def test_a_bad_option_item_is_a_usage_error_naming_the_option() -> None:
    assert pairs_option(None, "--meta") == {}
    with pytest.raises(typer.BadParameter) as info:
        pairs_option(["ok=1", "bad"], "--meta")
    assert info.value.param_hint == "'--meta'"

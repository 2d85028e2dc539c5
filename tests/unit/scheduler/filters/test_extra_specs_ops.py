"""Nova's extra-spec operators (filters/extra_specs_ops.py): pure table tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.scheduler.filters.extra_specs_ops import describe, match

CASES: list[tuple[str | Sequence[str] | None, str, bool]] = [
    # plain value: string equality
    ("1", "1", True),
    ("KVM", "KVM", True),
    ("KVM", "kvm", False),
    ("1", "2", False),
    ("", "", True),
    # "=": numerically at least (Nova's legacy meaning)
    ("123", "= 123", True),
    ("124", "= 123", True),
    ("122", "= 123", False),
    ("12.5", "= 12", True),
    ("abc", "= 123", False),
    ("123", "=", False),
    # numeric comparisons
    ("12311321", "== 12311321", True),
    ("12311321.0", "== 12311321", True),
    ("12311322", "== 12311321", False),
    ("x", "== 1", False),
    ("12311321", "!= 12311322", True),
    ("12311321", "!= 12311321", False),
    ("5", ">= 5", True),
    ("6", ">= 5", True),
    ("4", ">= 5", False),
    ("5", "<= 5", True),
    ("4", "<= 5", True),
    ("6", "<= 5", False),
    ("1e3", ">= 999", True),
    # string comparisons
    ("abc", "s== abc", True),
    ("abc", "s== abd", False),
    ("abc", "s!= abd", True),
    ("abc", "s!= abc", False),
    ("abc", "s< abd", True),
    ("abd", "s< abc", False),
    ("abc", "s<= abc", True),
    ("abd", "s<= abc", False),
    ("abd", "s> abc", True),
    ("abc", "s> abd", False),
    ("abc", "s>= abc", True),
    ("abb", "s>= abc", False),
    ("10", "s< 9", True),  # string, not numeric, order
    # <in>: substring of a string, member of a list
    ("12311321", "<in> 11", True),
    ("12311321", "<in> 12311321", True),
    ("12310321", "<in> 11", False),
    ("abc", "<in>", False),
    (["avx", "sse4_2"], "<in> avx", True),
    (["avx2"], "<in> avx", False),
    # <all-in>
    ("abc def", "<all-in> abc def", True),
    ("abc", "<all-in> abc def", False),
    (["avx", "sse4_2", "aes"], "<all-in> aes avx", True),
    (["avx", "sse4_2"], "<all-in> aes avx", False),
    ("abc", "<all-in>", False),  # an operator with no operand matches nothing
    # <or>
    ("12", "<or> 11 <or> 12", True),
    ("13", "<or> 11 <or> 12", False),
    ("12", "<or> 11 <or> 12 <or>", True),
    ("11", "<or> 11", True),
    ("x", "<or>", False),
    ("<or>", "<or> 11 <or> 12", False),  # the keyword itself is not an alternative
    # lists compared as their comma-joined text by other operators
    (["a", "b"], "a,b", True),
    (["a", "b"], "s== a,b", True),
    # a missing value never matches
    (None, "1", False),
    (None, "<in> 1", False),
    (None, "<or> 1", False),
    (None, "", False),
]


@pytest.mark.parametrize(("value", "requirement", "expected"), CASES)
def test_match(value: str | Sequence[str] | None, requirement: str, expected: bool) -> None:
    assert match(value, requirement) is expected


def test_unknown_operator_is_a_plain_value() -> None:
    assert match("~= 1", "~= 1")
    assert not match("1", "~= 1")


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [(">= 4", ">= 4"), ("<or> a  <or> b", "<or> a <or> b"), ("KVM", "'KVM'"), ("", "''")],
)
def test_describe(requirement: str, expected: str) -> None:
    assert describe(requirement) == expected

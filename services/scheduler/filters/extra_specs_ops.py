"""Matching a host value against a flavor extra spec requirement, after Nova's
``nova/scheduler/filters/extra_specs_ops.py``.

A requirement is either a plain value (the host value must equal it as a string) or an operator
followed by operands:

==========  =====================================================  ===================
operator    passes when                                            example
==========  =====================================================  ===================
``=``       the value is numerically >= the operand (Nova's odd    ``= 4``
            legacy meaning)
``==``      numerically equal                                      ``== 2.0``
``!=``      numerically different                                  ``!= 0``
``>=``      numerically at least                                   ``>= 1024``
``<=``      numerically at most                                    ``<= 8``
``s==``     string equal (``s!=``, ``s<``, ``s<=``, ``s>``,        ``s== KVM``
            ``s>=`` compare as strings)
``<in>``    the operand is in the value (substring; element of a   ``<in> avx``
            list value)
``<all-in>``  every operand is in the value                        ``<all-in> avx sse``
``<or>``    the value equals one of the alternatives               ``<or> kvm <or> qemu``
==========  =====================================================  ===================

A list value (``cpu_features``) is matched element-wise by ``<in>`` and ``<all-in>`` and as its
comma-joined string by everything else. A numeric operator on a non-number does not match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

Value = str | Sequence[str]


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def method(value: Any, operand: Any) -> bool:
        return compare(float(value), float(operand))

    return method


def _contains(value: Any, operand: Any) -> bool:
    return bool(operand in value)


def _contains_all(value: Any, operands: Any) -> bool:
    return all(o in value for o in operands)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _numeric(operator.ge),
    "<in>": _contains,
    "<all-in>": _contains_all,
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}
OR = "<or>"
MEMBERSHIP = ("<in>", "<all-in>")


def match(value: Value | None, requirement: str) -> bool:
    """Whether the host value satisfies the requirement; a missing value (None) never does."""
    words = requirement.split()
    op = words.pop(0) if words else ""
    method = OPERATORS.get(op)
    if value is None:
        return False
    if op not in MEMBERSHIP and not isinstance(value, str):
        value = ",".join(value)
    if op == OR:
        # "<or> v1 <or> v2 <or> v3": the alternatives are every other word.
        return value in words[::2]
    if method is None:
        return value == requirement
    if not words:
        return False  # an operator with nothing to compare against
    try:
        return method(value, words if op == "<all-in>" else words[0])
    except ValueError:
        return False  # a numeric comparison with a value that is not a number


def describe(requirement: str) -> str:
    """The requirement as a user reads it: ``>= 4`` stays, a plain value is quoted."""
    words = requirement.split()
    if words and (words[0] in OPERATORS or words[0] == OR):
        return " ".join(words)
    return repr(requirement)

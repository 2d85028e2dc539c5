"""ListServers filters: an unknown status or vm_state word is refused, naming the valid ones."""

from __future__ import annotations

import pytest

from services.api.servers import list_filter
from services.core.errors import InvalidArgument
from stratus.v1 import servers_pb2 as pb


def test_status_words_match_in_any_case() -> None:
    server = pb.Server(name="web", status=pb.SERVER_STATUS_ACTIVE, vm_state=pb.VM_STATE_ACTIVE)
    assert list_filter.parse("status=active")(server)
    assert list_filter.parse("status=ACTIVE AND vm_state=Active")(server)
    assert not list_filter.parse("status=SHUTOFF")(server)


@pytest.mark.parametrize(("expr", "field"), [("status=FOO", "status"), ("vm_state=BUILD", "vm_state")])
def test_an_unknown_enum_word_is_refused_with_the_known_ones(expr: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        list_filter.parse(expr)
    where, why = info.value.violations[0]
    assert where == "filter" and f"unknown {field}" in why and "ERROR" in why


def test_an_echoed_value_is_shortened() -> None:
    with pytest.raises(InvalidArgument) as info:
        list_filter.parse("status=" + "X" * 5000)
    assert len(info.value.violations[0][1]) < 400

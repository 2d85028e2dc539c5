"""Membership rules and the event hub: pure, no I/O."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from services.core import service_members as members
from services.core.errors import Unavailable
from services.core.service_members import DISABLED, DOWN, ENABLED, UNSPECIFIED, UP
from services.servicegroup import events
from stratus.servicegroup.v1 import servicegroup_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import services_pb2

NOW = timestamp_pb2.Timestamp(seconds=2000)
EARLIER = timestamp_pb2.Timestamp(seconds=1000)
RECORD = state_pb2.ServiceRecord(binary="compute", host="c1", endpoint="c1:1", version="0.1.0", started_at=EARLIER)
SEEN = state_pb2.ServiceSeen(last_seen=EARLIER, endpoint="c1:0")


def test_a_live_service_is_up_and_seen_now() -> None:
    member = members.compose("compute", "c1", record=RECORD, admin=None, seen=SEEN, now=NOW)
    assert (member.state, member.status, member.forced_down) == (UP, ENABLED, False)
    assert (member.last_seen, member.endpoint, member.version, member.started_at) == (NOW, "c1:1", "0.1.0", EARLIER)


def test_a_forced_down_service_is_down_even_while_alive() -> None:
    admin = state_pb2.ServiceAdmin(status=DISABLED, disabled_reason="dead disk", forced_down=True)
    member = members.compose("compute", "c1", record=RECORD, admin=admin, seen=None, now=NOW)
    assert (member.state, member.status, member.forced_down, member.disabled_reason) == (
        DOWN,
        DISABLED,
        True,
        "dead disk",
    )


def test_a_gone_service_is_down_with_its_last_seen() -> None:
    member = members.compose("compute", "c1", record=None, admin=None, seen=SEEN, now=NOW)
    assert (member.state, member.last_seen, member.endpoint) == (DOWN, EARLIER, "c1:0")


def admin(status: int = ENABLED, reason: str = "", forced: bool = False) -> state_pb2.ServiceAdmin:
    return state_pb2.ServiceAdmin(status=status, disabled_reason=reason, forced_down=forced)  # type: ignore[arg-type]


UPDATES = [
    # current, status, disabled_reason, forced_down -> (status, reason, forced)
    ("new-keeps-defaults", None, UNSPECIFIED, None, None, (ENABLED, "", False)),
    ("disable-with-reason", admin(), DISABLED, "maintenance", None, (DISABLED, "maintenance", False)),
    ("disable-keeps-reason-and-force", admin(DISABLED, "old", True), DISABLED, None, None, (DISABLED, "old", True)),
    ("enable-clears-reason", admin(DISABLED, "maintenance"), ENABLED, None, None, (ENABLED, "", False)),
    ("enable-with-reason", admin(DISABLED, "maintenance"), ENABLED, "back", None, (ENABLED, "back", False)),
    ("unspecified-keeps-status", admin(DISABLED, "m"), UNSPECIFIED, None, True, (DISABLED, "m", True)),
    ("unspecified-sets-reason", admin(DISABLED, "m"), UNSPECIFIED, "new", None, (DISABLED, "new", False)),
    ("clear-forced-down", admin(ENABLED, "", True), UNSPECIFIED, None, False, (ENABLED, "", False)),
]


@pytest.mark.parametrize(
    ("current", "status", "reason", "forced", "expected"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES]
)
def test_apply_update(
    current: state_pb2.ServiceAdmin | None,
    status: services_pb2.ServiceStatus.ValueType,
    reason: str | None,
    forced: bool | None,
    expected: tuple[int, str, bool],
) -> None:
    result = members.apply_update(current, status, reason, forced, NOW)
    assert (result.status, result.disabled_reason, result.forced_down) == expected
    assert result.updated_at == NOW


def event(binary: str) -> servicegroup_pb2.MemberEvent:
    return servicegroup_pb2.MemberEvent(member=services_pb2.Service(binary=binary, host="h"))


async def test_subscriptions_get_their_binary_and_unsubscribe_on_close() -> None:
    hub = events.MemberEvents()
    with hub.subscribe("compute") as compute, hub.subscribe() as every:
        assert len(hub) == 2
        hub.publish(event("scheduler"))
        hub.publish(event("compute"))
        assert (await anext(compute)).member.binary == "compute"
        assert (await anext(every)).member.binary == "scheduler"
        assert (await anext(every)).member.binary == "compute"
    assert len(hub) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(compute)


async def test_a_subscriber_that_falls_behind_is_ended() -> None:
    hub = events.MemberEvents()
    with hub.subscribe() as slow:
        for _ in range(events.MAX_PENDING + 1):
            hub.publish(event("compute"))
        with pytest.raises(Unavailable, match="list the members and watch again"):
            await anext(slow)


def test_a_degraded_compute_says_why_and_stays_up() -> None:
    member = members.compose("compute", "c1", record=RECORD, admin=None, seen=None, now=NOW, degraded_reason="hung")
    assert (member.state, member.degraded_reason) == (UP, "hung")
    assert members.compose("compute", "c1", record=RECORD, admin=None, seen=None, now=NOW).degraded_reason == ""

"""Membership against a real etcd: leases make services UP and DOWN, the operator's updates stick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.core import keys
from services.core.errors import InvalidArgument, NotFound
from services.core.etcd import Store
from services.core.service_members import DISABLED, DOWN, ENABLED, UP
from services.servicegroup.events import Subscription
from services.servicegroup.manager import ServiceGroupManager
from stratus.servicegroup.v1 import servicegroup_pb2
from stratus.state.v1 import state_pb2

EVENT_WAIT_S = 30.0  # a guard against hanging, not a timing assertion


@pytest.fixture
async def manager(store: Store) -> AsyncIterator[ServiceGroupManager]:
    m = ServiceGroupManager(store)
    await m.start()
    yield m
    await m.stop()


async def register(store: Store, binary: str, host: str) -> int:
    """Puts the service's record under a fresh lease, as a running process does; the lease id."""
    lease = await store.grant(30)
    record = state_pb2.ServiceRecord(binary=binary, host=host, endpoint=f"{host}:9000", version="0.1.0")
    record.started_at.GetCurrentTime()
    await store.put(keys.service(binary, host), record.SerializeToString(), lease=lease)
    return lease


async def next_event(watch: Subscription) -> servicegroup_pb2.MemberEvent:
    return await asyncio.wait_for(anext(watch), EVENT_WAIT_S)


async def test_a_leased_service_is_up_then_down_with_a_last_seen(store: Store, manager: ServiceGroupManager) -> None:
    with manager.watch_members("compute") as watch:
        await register(store, "scheduler", "s1")  # another binary: not on this watch
        lease = await register(store, "compute", "c1")
        up = await next_event(watch)
        assert (up.type, up.member.host, up.member.state) == (servicegroup_pb2.MEMBER_EVENT_TYPE_UP, "c1", UP)
        (member,) = manager.list_members("compute")
        assert (member.state, member.status, member.endpoint, member.version) == (UP, ENABLED, "c1:9000", "0.1.0")
        assert member.last_seen.seconds > 0 and member.started_at.seconds > 0
        await store.revoke(lease)
        down = await next_event(watch)
    assert (down.type, down.member.state) == (servicegroup_pb2.MEMBER_EVENT_TYPE_DOWN, DOWN)
    assert down.member.last_seen.seconds > 0 and down.member.endpoint == "c1:9000"
    await manager.seen_writer.flush()
    kv = await store.get(keys.service_seen("compute", "c1"))
    assert kv is not None
    seen = state_pb2.ServiceSeen.FromString(kv.value)
    assert seen.last_seen == down.member.last_seen and seen.endpoint == "c1:9000"
    assert [(m.binary, m.host, m.state) for m in manager.list_members()] == [
        ("compute", "c1", DOWN),
        ("scheduler", "s1", UP),
    ]


async def test_a_restarted_servicegroup_remembers_down_services(store: Store, manager: ServiceGroupManager) -> None:
    with manager.watch_members("compute") as watch:
        lease = await register(store, "compute", "c1")
        await next_event(watch)
        await store.revoke(lease)
        down = await next_event(watch)
    await manager.seen_writer.flush()
    fresh = ServiceGroupManager(store)
    await fresh.start()
    try:
        (member,) = fresh.list_members(host="c1")
    finally:
        await fresh.stop()
    assert (member.state, member.last_seen, member.endpoint) == (DOWN, down.member.last_seen, "c1:9000")


async def test_disable_and_force_down(store: Store, manager: ServiceGroupManager) -> None:
    with manager.watch_members() as watch:
        await register(store, "compute", "c1")
        await next_event(watch)
        disabled = await manager.update_member("compute", "c1", DISABLED, disabled_reason="maintenance")
        assert (disabled.state, disabled.status, disabled.disabled_reason) == (UP, DISABLED, "maintenance")
        updated = await next_event(watch)
        assert updated.type == servicegroup_pb2.MEMBER_EVENT_TYPE_UPDATED
        assert (updated.member.status, updated.member.disabled_reason) == (DISABLED, "maintenance")
        (listed,) = manager.list_members("compute", "c1")
        assert (listed.state, listed.status, listed.disabled_reason) == (UP, DISABLED, "maintenance")

        forced = await manager.update_member("compute", "c1", forced_down=True)
        assert (forced.state, forced.status, forced.disabled_reason, forced.forced_down) == (
            DOWN,
            DISABLED,
            "maintenance",
            True,
        )
        down = await next_event(watch)
        assert (down.type, down.member.forced_down) == (servicegroup_pb2.MEMBER_EVENT_TYPE_DOWN, True)

        enabled = await manager.update_member("compute", "c1", ENABLED, forced_down=False)
        assert (enabled.state, enabled.status, enabled.disabled_reason, enabled.forced_down) == (UP, ENABLED, "", False)
        up = await next_event(watch)
        assert (up.type, up.member.status) == (servicegroup_pb2.MEMBER_EVENT_TYPE_UP, ENABLED)
    kv = await store.get(keys.service_admin("compute", "c1"))
    assert kv is not None
    admin = state_pb2.ServiceAdmin.FromString(kv.value)
    assert (admin.status, admin.disabled_reason, admin.forced_down) == (ENABLED, "", False)
    (listed,) = manager.list_members("compute", "c1")
    assert (listed.state, listed.status) == (UP, ENABLED)


async def test_a_down_service_can_still_be_disabled(store: Store, manager: ServiceGroupManager) -> None:
    seen = state_pb2.ServiceSeen(endpoint="c9:9000")
    seen.last_seen.GetCurrentTime()
    await store.put(keys.service_seen("compute", "c9"), seen.SerializeToString())
    member = await manager.update_member("compute", "c9", DISABLED)
    assert (member.state, member.status, member.endpoint) == (DOWN, DISABLED, "c9:9000")


async def test_unknown_services_and_bad_requests_are_refused(manager: ServiceGroupManager) -> None:
    with pytest.raises(NotFound) as info:
        await manager.update_member("compute", "nowhere", DISABLED)
    assert (info.value.resource_type, info.value.name) == ("service", "compute/nowhere")
    with pytest.raises(InvalidArgument) as bad:
        await manager.update_member("compute", "", 7)  # type: ignore[arg-type]
    assert bad.value.violations == [("host", "required"), ("status", "unknown status 7")]


async def put_capabilities(store: Store, host: str, degraded_reason: str = "", lease: int = 0) -> None:
    caps = state_pb2.HostCapabilities(host=host, vcpus=4, degraded_reason=degraded_reason)
    await store.put(keys.host_capabilities(host), caps.SerializeToString(), lease=lease)


async def test_a_compute_whose_hypervisor_hangs_says_why_and_stays_up(
    store: Store, manager: ServiceGroupManager
) -> None:
    reason = "libvirt at qemu:///system did not answer 'listing domains' within 60 s"
    with manager.watch_members("compute") as watch:
        lease = await register(store, "compute", "c1")
        await next_event(watch)
        await put_capabilities(store, "c1", lease=lease)
        await store.put(keys.host_usage("c1"), state_pb2.HostUsage().SerializeToString())  # not capabilities: no event
        await put_capabilities(store, "c1", reason, lease=lease)
        degraded = await next_event(watch)
        assert (degraded.type, degraded.member.state) == (servicegroup_pb2.MEMBER_EVENT_TYPE_UPDATED, UP)
        assert degraded.member.degraded_reason == reason
        assert manager.list_members("compute", "c1")[0].degraded_reason == reason
        await put_capabilities(store, "c1", lease=lease)
        cleared = await next_event(watch)
        assert (cleared.type, cleared.member.degraded_reason) == (servicegroup_pb2.MEMBER_EVENT_TYPE_UPDATED, "")
        await put_capabilities(store, "c1", reason, lease=lease)
        await next_event(watch)
        await store.revoke(lease)  # the capabilities go with the lease: nothing degraded is left
        events = [await next_event(watch) for _ in range(2)]
    kinds = {servicegroup_pb2.MEMBER_EVENT_TYPE_UPDATED, servicegroup_pb2.MEMBER_EVENT_TYPE_DOWN}
    assert {e.type for e in events} == kinds
    assert events[-1].member.degraded_reason == "" and manager.list_members("compute", "c1")[0].state == DOWN


async def test_members_page_through_every_member_once_in_key_order(store: Store) -> None:
    names = [("api", "b"), ("compute", "c1"), ("compute", "c1-a"), ("compute", "c1.b"), ("compute", "c2"),
             ("scheduler", "s1")]  # fmt: skip
    for binary, host in names:
        await store.put(keys.service_seen(binary, host), state_pb2.ServiceSeen().SerializeToString())
    manager = ServiceGroupManager(store)
    await manager.start()
    try:
        for binary, size in (("", 1), ("", 4), ("compute", 1), ("compute", 1000)):
            found: list[str] = []
            page, after = manager.members_page(binary, "", "", size)
            while True:
                assert 1 <= len(page) <= size and (not after or after == f"{page[-1].binary}/{page[-1].host}")
                found += [f"{m.binary}/{m.host}" for m in page]
                if not after:
                    break
                page, after = manager.members_page(binary, "", after, size)
            wanted = [f"{b}/{h}" for b, h in names if not binary or b == binary]
            assert found == wanted == [f"{m.binary}/{m.host}" for m in manager.list_members(binary)]
    finally:
        await manager.stop()

"""Claims against a real etcd: what a claim records, the server's record naming the host and
server group placements in the same transaction, lost races on the group, several schedulers
never over-committing, and never placing a server twice or one being deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.core import claims, instances, keys
from services.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from services.core.etcd import Store
from services.scheduler.claim_plan import MAX_TXN_BYTES
from services.scheduler.manager import SchedulerManager
from services.scheduler.options import OptionsWatcher
from services.scheduler.options_model import SchedulerOptions
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servergroups_pb2, servers_pb2
from tests.support.records import building, host_of

Factory = Callable[..., Awaitable[SchedulerManager]]
Policy = servergroups_pb2.ServerGroupPolicy


@pytest.fixture
async def managers(store: Store) -> AsyncIterator[Factory]:
    started: list[SchedulerManager] = []

    async def start(**options: Any) -> SchedulerManager:
        watcher = OptionsWatcher({**SchedulerOptions().option_values(), "cpu_allocation_ratio": 1.0, **options})
        manager = SchedulerManager(store, options=watcher, alternates=2)
        await manager.start()
        started.append(manager)
        return manager

    yield start
    for manager in started:
        await manager.stop()


async def add_host(store: Store, name: str, *, ram_mb: int = 8192, vcpus: int = 16, reserved_ram_mb: int = 0) -> None:
    caps = state_pb2.HostCapabilities(
        host=name, vcpus=vcpus, ram_mb=ram_mb, disk_gb=500, reserved_ram_mb=reserved_ram_mb
    )
    await store.put(keys.host_capabilities(name), caps.SerializeToString())
    record = state_pb2.ServiceRecord(binary="compute", host=name, endpoint=f"{name}:1")
    await store.put(keys.service("compute", name), record.SerializeToString())


def pairs(one: SchedulerManager, two: SchedulerManager, n: int) -> list[tuple[int, SchedulerManager]]:
    return [(i, (one, two)[i % 2]) for i in range(n)]


async def add_group(store: Store, group_id: str, policy: servergroups_pb2.ServerGroupPolicy.ValueType) -> None:
    group = servergroups_pb2.ServerGroup(id=group_id, name=group_id, policy=policy)
    await store.put(keys.server_group(group_id), state_pb2.ServerGroupRecord(group=group).SerializeToString())


async def placements(store: Store, group_id: str) -> dict[str, str]:
    kv = await store.get(keys.server_group(group_id))
    assert kv is not None
    return dict(state_pb2.ServerGroupRecord.FromString(kv.value).placements)


def spec(
    instance_id: str, ram_mb: int = 1024, *, group: str = "", vcpus: int = 1, ignore: list[str] | None = None
) -> scheduler_pb2.RequestSpec:
    return scheduler_pb2.RequestSpec(
        instance_id=instance_id,
        project_id="p-1",
        flavor_id="m1.small",
        resources=servers_pb2.ServerResources(vcpus=vcpus, ram_mb=ram_mb, disk_gb=1),
        server_group_id=group,
        ignore_hosts=ignore or [],
    )


async def claimed(store: Store, host: str) -> dict[str, state_pb2.Claim]:
    usage, _ = await claims.read_usage(store, host)
    return dict(usage.claims)


async def test_a_claim_records_flavor_and_project(store: Store, managers: Factory) -> None:
    await add_host(store, "h1")
    await building(store, "i-1")
    manager = await managers()
    await manager.select_destinations(spec("i-1"))
    claim = (await claimed(store, "h1"))["i-1"]
    assert (claim.flavor_id, claim.project_id, claim.ram_mb, claim.vcpus) == ("m1.small", "p-1", 1024, 1)
    assert claim.created_at.seconds > 0
    assert await host_of(store, "i-1") == "h1"  # written with the claim


async def test_reserved_memory_is_not_claimed(store: Store, managers: Factory) -> None:
    await add_host(store, "h1", ram_mb=4096, reserved_ram_mb=2048)
    await building(store, "i-1", "i-2")
    manager = await managers()
    await manager.select_destinations(spec("i-1", 2048))
    with pytest.raises(ResourceExhausted, match="2048 MB RAM needed, at most 0 MB free"):
        await manager.select_destinations(spec("i-2", 2048))


async def test_concurrent_decisions_in_one_scheduler_see_each_other(store: Store, managers: Factory) -> None:
    for name in ("h1", "h2"):
        await add_host(store, name, ram_mb=4096)
    await building(store, *(f"i-{i}" for i in range(10)))
    manager = await managers()
    results = await asyncio.gather(
        *(manager.select_destinations(spec(f"i-{i}")) for i in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, scheduler_pb2.SelectDestinationsResponse) for r in results) == 8
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(refused) == 2 and all(r.metadata["resource"] == "ram_mb" for r in refused)
    assert len(await claimed(store, "h1")) == 4 and len(await claimed(store, "h2")) == 4


async def test_anti_affinity_placements_land_with_the_claims(store: Store, managers: Factory) -> None:
    for name in ("h1", "h2", "h3"):
        await add_host(store, name)
    await add_group(store, "g", Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY)
    await building(store, "i-0", "i-1", "i-2", "i-9", group="g")
    one, two = await managers(), await managers()
    replies = await asyncio.gather(*(m.select_destinations(spec(f"i-{i}", group="g")) for i, m in pairs(one, two, 3)))
    hosts = sorted(r.selected.host for r in replies)
    assert hosts == ["h1", "h2", "h3"]
    assert await placements(store, "g") == {f"i-{i}": r.selected.host for i, r in enumerate(replies)}
    with pytest.raises(ResourceExhausted) as info:
        await one.select_destinations(spec("i-9", group="g"))
    assert "ServerGroupAntiAffinityFilter removed 3 of 3 hosts" in info.value.message


async def test_affinity_members_follow_the_first_across_schedulers(store: Store, managers: Factory) -> None:
    for name in ("h1", "h2", "h3"):
        await add_host(store, name)
    await add_group(store, "g", Policy.SERVER_GROUP_POLICY_AFFINITY)
    await building(store, *(f"i-{i}" for i in range(6)), group="g")
    one, two = await managers(), await managers()
    replies = await asyncio.gather(*(m.select_destinations(spec(f"i-{i}", group="g")) for i, m in pairs(one, two, 6)))
    assert len({r.selected.host for r in replies}) == 1
    assert set((await placements(store, "g")).values()) == {replies[0].selected.host}


async def test_a_group_changed_under_a_decision_is_decided_again(store: Store, managers: Factory) -> None:
    await add_host(store, "roomy", ram_mb=16384)
    await add_host(store, "small", ram_mb=4096)
    await add_group(store, "g", Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY)
    await building(store, "i-1", group="g")
    manager = await managers()
    await manager.groups.stop()  # freeze the group cache: it will not see the next placement
    record = state_pb2.ServerGroupRecord()
    record.CopyFrom((await manager.groups.resolve("g") or (record, 0))[0])
    record.placements["other"] = "roomy"
    await store.put(keys.server_group("g"), record.SerializeToString())
    reply = await manager.select_destinations(spec("i-1", group="g"))
    assert reply.selected.host == "small"  # roomy was chosen, the swap on the group lost, then re-decided
    assert await placements(store, "g") == {"other": "roomy", "i-1": "small"}
    assert list(await claimed(store, "roomy")) == []


async def test_an_unknown_group_is_not_found(store: Store, managers: Factory) -> None:
    await add_host(store, "h1")
    manager = await managers()
    with pytest.raises(Exception, match="server group 'nope' not found"):
        await manager.select_destinations(spec("i-1", group="nope"))


@pytest.mark.parametrize("driver", ["filter", "chance"])
async def test_two_schedulers_racing_land_exactly_the_capacity(store: Store, managers: Factory, driver: str) -> None:
    """6 hosts x 4 slots, 48 requests over two schedulers: exactly 24 land, none over-commits."""
    for i in range(6):
        await add_host(store, f"h{i}", ram_mb=4096, vcpus=64)
    await building(store, *(f"i-{i}" for i in range(48)))
    schedulers = [await managers(scheduler_driver=driver), await managers(scheduler_driver=driver)]
    results = await asyncio.gather(
        *(schedulers[i % 2].select_destinations(spec(f"i-{i}")) for i in range(48)), return_exceptions=True
    )
    landed = [r for r in results if isinstance(r, scheduler_pb2.SelectDestinationsResponse)]
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(landed) == 24 and len(refused) == 24
    assert all(r.metadata == {"filter": "RamFilter", "resource": "ram_mb"} for r in refused)
    for i in range(6):
        assert len(await claimed(store, f"h{i}")) == 4
    by_host = {r.selected.host for r in landed}
    assert by_host == {f"h{i}" for i in range(6)}


async def test_no_claim_for_a_server_gone_or_being_deleted(store: Store, managers: Factory) -> None:
    await add_host(store, "h1")
    await building(store, "i-1")
    await instances.update(store, "i-1", deleting)
    manager = await managers()
    for instance_id in ("i-1", "i-gone"):
        with pytest.raises(FailedPrecondition) as info:
            await manager.select_destinations(spec(instance_id))
        assert info.value.reason == "SERVER_DELETING"
    assert await claimed(store, "h1") == {}
    assert await host_of(store, "i-1") == ""


async def test_a_stale_scheduler_never_places_a_server_twice(store: Store, managers: Factory) -> None:
    """The second scheduler's cache misses the first placement: it picks another host, finds the
    record naming the first, and answers that host; the other host holds nothing."""
    await add_host(store, "h1", ram_mb=4096)
    await add_host(store, "h2", ram_mb=8192)
    await building(store, "i-1")
    one, two = await managers(), await managers()
    await two.hosts.stop()  # freeze its cache
    first = await one.select_destinations(spec("i-1", ignore=["h2"]))
    assert first.selected.host == "h1"
    again = await two.select_destinations(spec("i-1"))
    assert again.selected.host == "h1"
    assert await claimed(store, "h2") == {} and list(await claimed(store, "h1")) == ["i-1"]
    assert await host_of(store, "i-1") == "h1"


def deleting(record: state_pb2.InstanceRecord) -> None:
    record.server.task_state = servers_pb2.TaskState.TASK_STATE_DELETING


async def test_a_record_sent_stale_is_read_again_and_nothing_it_missed_is_lost(store: Store, managers: Factory) -> None:
    """The api sends the record it read and its revision; one written since is read again."""
    await add_host(store, "h1")
    await building(store, "i-1", "i-2")
    sent = [await instances.get(store, i) for i in ("i-1", "i-2")]
    await instances.update(store, "i-1", lambda r: r.server.metadata.update({"later": "yes"}))
    await instances.update(store, "i-2", deleting)
    manager = await managers()
    reply = await manager.select_destinations(spec("i-1"), record=sent[0])
    stored, _ = await instances.get(store, "i-1")
    assert reply.selected.host == stored.server.host == "h1" and stored.server.metadata["later"] == "yes"
    with pytest.raises(FailedPrecondition, match="being deleted"):
        await manager.select_destinations(spec("i-2"), record=sent[1])
    assert list(await claimed(store, "h1")) == ["i-1"]


async def test_a_record_of_another_server_is_refused(store: Store, managers: Factory) -> None:
    await add_host(store, "h1")
    await building(store, "i-1", "i-2")
    manager = await managers()
    with pytest.raises(InvalidArgument):
        await manager.select_destinations(spec("i-1"), record=await instances.get(store, "i-2"))


async def test_claim_transactions_stay_well_under_etcds_request_limit(
    store: Store, managers: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts with large usage records (6,000 claims each: 12 of them hold 3 MB): claims decided together go in
    several transactions, each under ``MAX_TXN_BYTES``, instead of one that etcd would refuse."""
    heavy = state_pb2.HostUsage()
    for i in range(6000):
        old = state_pb2.Claim(instance_id=f"old-{i:05d}", project_id="p-0", flavor_id="m1.tiny", ram_mb=1)
        heavy.claims[old.instance_id].CopyFrom(old)
    assert heavy.ByteSize() > 250_000
    for h in range(12):
        await add_host(store, f"h{h}", ram_mb=1 << 20, vcpus=64)
        await store.put(keys.host_usage(f"h{h}"), heavy.SerializeToString())
    await building(store, *(f"i-{i}" for i in range(12)))
    manager = await managers()
    sizes: list[int] = []
    txn = store.txn

    async def measured(compare: Any, success: Any, failure: Any = ()) -> Any:
        sizes.append(sum(op.ByteSize() for op in (*compare, *success, *failure)))
        return await txn(compare, success, failure)

    monkeypatch.setattr(store, "txn", measured)
    replies = await asyncio.gather(*(manager.select_destinations(spec(f"i-{i}")) for i in range(12)))
    assert len({r.selected.host for r in replies}) == 12  # one transaction could not hold them all
    assert len(sizes) > 6 and max(sizes) < MAX_TXN_BYTES  # a read of the records, then 6 or more
    for h in range(12):
        assert len(await claimed(store, f"h{h}")) == 6001


async def test_the_claim_and_the_records_host_are_written_in_one_transaction(
    store: Store, managers: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic (no race needed to catch a split): every transaction that lands is recorded,
    and the claim on the host's usage and the record naming the host are in the same one."""
    await add_host(store, "h1")
    await building(store, "i-1")
    manager = await managers()
    landed: list[set[str]] = []
    real_txn = store.txn

    async def recording(compare: Any, success: Any, failure: Any = ()) -> Any:
        ok, resp = await real_txn(compare, success, failure)
        if ok:
            landed.append({op.request_put.key.decode() for op in success if op.HasField("request_put")})
        return ok, resp

    monkeypatch.setattr(store, "txn", recording)
    await manager.select_destinations(spec("i-1"))
    usage, record = (store._abs(k).decode() for k in (keys.host_usage("h1"), keys.instance("i-1")))
    writing = [keys_ for keys_ in landed if usage in keys_ or record in keys_]
    assert writing and all({usage, record} <= keys_ for keys_ in writing), writing

"""select_destinations against a real etcd: choice, claim, retries, races and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.core import claims, keys
from services.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from services.core.etcd import Store
from services.scheduler.filters import build_filters
from services.scheduler.manager import SchedulerManager
from services.scheduler.options_model import DEFAULT_FILTERS, DEFAULT_WEIGHERS
from services.scheduler.weighers import build_weighers
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2, services_pb2
from tests.support.records import building, host_of

Factory = Callable[[], Awaitable[SchedulerManager]]


@pytest.fixture
async def managers(store: Store) -> AsyncIterator[Factory]:
    started: list[SchedulerManager] = []

    async def start() -> SchedulerManager:
        manager = SchedulerManager(
            store, build_filters(DEFAULT_FILTERS), build_weighers(DEFAULT_WEIGHERS, {}), alternates=2
        )
        await manager.start()
        started.append(manager)
        return manager

    yield start
    for manager in started:
        await manager.stop()


async def add_host(store: Store, name: str, ram_mb: int, *, vcpus: int = 16, disk_gb: int = 500) -> None:
    caps = state_pb2.HostCapabilities(host=name, vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb)
    await store.put(keys.host_capabilities(name), caps.SerializeToString())
    record = state_pb2.ServiceRecord(binary="compute", host=name, endpoint=f"{name}:1")
    await store.put(keys.service("compute", name), record.SerializeToString())


def spec(instance_id: str, ram_mb: int, *, vcpus: int = 1, disk_gb: int = 1, ignore: tuple[str, ...] = ()) -> Any:
    return scheduler_pb2.RequestSpec(
        instance_id=instance_id,
        project_id="p-1",
        resources=servers_pb2.ServerResources(vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb),
        ignore_hosts=list(ignore),
    )


async def claims_on(store: Store, host: str) -> dict[str, state_pb2.Claim]:
    usage, _ = await claims.read_usage(store, host)
    return dict(usage.claims)


async def eventually(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


async def test_roomiest_host_is_chosen_and_claimed(store: Store, managers: Factory) -> None:
    for name, ram in (("h1", 2048), ("h2", 8192), ("h3", 4096)):
        await add_host(store, name, ram)
    await building(store, "i-1")
    manager = await managers()
    reply = await manager.select_destinations(spec("i-1", 1024, vcpus=2, disk_gb=10))
    assert reply.selected.host == "h2"
    assert [d.host for d in reply.alternates] == ["h3", "h1"]
    claim = (await claims_on(store, "h2"))["i-1"]
    assert (claim.project_id, claim.vcpus, claim.ram_mb, claim.disk_gb) == ("p-1", 2, 1024, 10)
    assert claim.created_at.seconds > 0
    assert await claims_on(store, "h3") == {} and await claims_on(store, "h1") == {}


async def test_alternates_follow_the_request(store: Store, managers: Factory) -> None:
    for name in ("h1", "h2", "h3"):
        await add_host(store, name, 4096)
    await building(store, "i-1", "i-2")
    manager = await managers()
    assert len((await manager.select_destinations(spec("i-1", 512), alternates=0)).alternates) == 0
    assert len((await manager.select_destinations(spec("i-2", 512), alternates=1)).alternates) == 1


async def test_a_retried_request_gets_the_host_it_holds(store: Store, managers: Factory) -> None:
    for name, ram in (("h1", 4096), ("h2", 8192)):
        await add_host(store, name, ram)
    await building(store, "i-1")
    manager = await managers()
    first = await manager.select_destinations(spec("i-1", 4096))
    assert first.selected.host == "h2"
    await eventually(lambda: manager.hosts.holders("i-1") == {"h2"})
    again = await manager.select_destinations(spec("i-1", 4096))
    assert again.selected.host == "h2"
    assert list(await claims_on(store, "h2")) == ["i-1"]
    with pytest.raises(FailedPrecondition) as info:  # the record still names h2: take it off first
        await manager.select_destinations(spec("i-1", 4096, ignore=("h2",)))
    assert info.value.reason == "ALREADY_PLACED"
    await claims.unplace(store, "i-1", "h2", lambda r: r.tried_hosts.append("h2"))
    moved = await manager.select_destinations(spec("i-1", 4096, ignore=("h2",)))
    assert moved.selected.host == "h1" and await host_of(store, "i-1") == "h1"
    assert await claims_on(store, "h2") == {}


async def test_dead_disabled_and_forced_down_hosts_are_skipped(store: Store, managers: Factory) -> None:
    for name, ram in (("live", 1024), ("dead", 8192), ("off", 8192), ("forced", 8192)):
        await add_host(store, name, ram)
    await store.delete(keys.service("compute", "dead"))
    off = state_pb2.ServiceAdmin(status=services_pb2.SERVICE_STATUS_DISABLED, disabled_reason="maintenance")
    await store.put(keys.service_admin("compute", "off"), off.SerializeToString())
    forced = state_pb2.ServiceAdmin(status=services_pb2.SERVICE_STATUS_ENABLED, forced_down=True)
    await store.put(keys.service_admin("compute", "forced"), forced.SerializeToString())
    await building(store, "i-1", "i-2")
    manager = await managers()
    assert (await manager.select_destinations(spec("i-1", 512))).selected.host == "live"
    with pytest.raises(ResourceExhausted) as info:
        await manager.select_destinations(spec("i-2", 1024))
    assert "ComputeFilter removed 3 of 4 hosts" in info.value.message


async def test_refusal_names_ram_filter_and_the_numbers(store: Store, managers: Factory) -> None:
    for name, ram in (("h1", 1024), ("h2", 512), ("h3", 256)):
        await add_host(store, name, ram)
    await building(store, "i-1")
    manager = await managers()
    with pytest.raises(ResourceExhausted) as info:
        await manager.select_destinations(spec("i-1", 4096, vcpus=2, disk_gb=20))
    err = info.value
    assert err.message == (
        "no valid host for 4096 MB / 2 vCPU / 20 GB: RamFilter removed 3 of 3 hosts "
        "(4096 MB RAM needed, at most 1024 MB free)"
    )
    assert err.reason == "NO_VALID_HOST"
    assert err.metadata == {"filter": "RamFilter", "resource": "ram_mb"}
    for name in ("h1", "h2", "h3"):
        assert await claims_on(store, name) == {}


async def test_a_stale_cache_loses_the_swap_and_moves_on(store: Store, managers: Factory) -> None:
    await add_host(store, "big", 8192)
    await add_host(store, "small", 4096)
    await building(store, "i-1")
    manager = await managers()
    await manager.hosts.stop()  # freeze the cache: it will not see the next claim
    usage, revision = await claims.read_usage(store, "big")
    other = state_pb2.Claim(instance_id="other", ram_mb=7168)
    assert await claims.try_claim(store, "big", other, usage, revision)
    reply = await manager.select_destinations(spec("i-1", 2048))
    assert reply.selected.host == "small"
    assert list(await claims_on(store, "big")) == ["other"]
    assert list(await claims_on(store, "small")) == ["i-1"]


async def test_two_schedulers_racing_for_room_for_one(store: Store, managers: Factory) -> None:
    await add_host(store, "roomy", 2048)
    await add_host(store, "tiny", 1024)
    await building(store, "i-1", "i-2")
    one, two = await managers(), await managers()
    results = await asyncio.gather(
        one.select_destinations(spec("i-1", 2048)), two.select_destinations(spec("i-2", 2048)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, scheduler_pb2.SelectDestinationsResponse)]
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(won) == 1 and won[0].selected.host == "roomy"
    assert len(refused) == 1 and refused[0].metadata["filter"] == "RamFilter"
    assert len(await claims_on(store, "roomy")) == 1
    assert await claims_on(store, "tiny") == {}


async def test_the_loser_of_a_race_goes_elsewhere(store: Store, managers: Factory) -> None:
    await add_host(store, "roomy", 2048)
    await add_host(store, "second", 1536)
    await building(store, "i-1", "i-2")
    one, two = await managers(), await managers()
    replies = await asyncio.gather(
        one.select_destinations(spec("i-1", 1536)), two.select_destinations(spec("i-2", 1536))
    )
    assert sorted(r.selected.host for r in replies) == ["roomy", "second"]
    assert len(await claims_on(store, "roomy")) == 1 and len(await claims_on(store, "second")) == 1


async def test_many_concurrent_requests_never_over_commit(store: Store, managers: Factory) -> None:
    for name in ("h1", "h2", "h3"):
        await add_host(store, name, 3072)
    await building(store, *(f"i-{i}" for i in range(10)))
    schedulers = [await managers(), await managers()]
    results = await asyncio.gather(
        *(schedulers[i % 2].select_destinations(spec(f"i-{i}", 1024)) for i in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, scheduler_pb2.SelectDestinationsResponse) for r in results) == 9
    assert sum(isinstance(r, ResourceExhausted) for r in results) == 1
    for name in ("h1", "h2", "h3"):
        assert len(await claims_on(store, name)) == 3


async def test_invalid_spec_is_refused(store: Store, managers: Factory) -> None:
    manager = await managers()
    with pytest.raises(InvalidArgument) as info:
        await manager.select_destinations(spec("", -1))
    assert info.value.violations == [
        ("spec.instance_id", "required"),
        ("spec.resources.ram_mb", "must not be negative"),
    ]


async def test_claimed_builds_count_as_io_ops_until_the_compute_reports(store: Store, managers: Factory) -> None:
    """A claim counts as one I/O-heavy task on its host until the host publishes stats again, so a
    burst of creates spreads; claims already there at start-up are not builds."""
    for name, ram in (("h1", 65536), ("h2", 60000), ("h3", 50000)):
        await add_host(store, name, ram)
    old = state_pb2.Claim(instance_id="old", ram_mb=1)
    await store.put(keys.host_usage("h1"), state_pb2.HostUsage(claims={"old": old}).SerializeToString())
    await building(store, "i-0", "i-1", "i-2")
    manager = await managers()
    assert manager.hosts.get("h1").io_ops == 0  # type: ignore[union-attr]
    chosen = [(await manager.select_destinations(spec(f"i-{i}", 1024))).selected.host for i in range(3)]
    assert chosen == ["h1", "h2", "h3"]  # by free RAM alone, all three would have gone to h1
    await eventually(lambda: all(manager.hosts.get(h).io_ops == 1 for h in chosen))  # type: ignore[union-attr]

    stats = state_pb2.HostStats(io_ops=1)  # h1's compute starts the build and says so
    await store.put(keys.host_stats("h1"), stats.SerializeToString())
    await eventually(lambda: manager.hosts.get("h1").io_ops == 1)  # type: ignore[union-attr]
    await store.put(keys.host_stats("h1"), state_pb2.HostStats().SerializeToString())  # and finishes it
    await eventually(lambda: manager.hosts.get("h1").io_ops == 0)  # type: ignore[union-attr]

    await claims.release(store, "h2", chosen_instance(chosen, "h2"))  # a deleted server is no build
    await eventually(lambda: manager.hosts.get("h2").io_ops == 0)  # type: ignore[union-attr]


def chosen_instance(chosen: list[str], host: str) -> str:
    return f"i-{chosen.index(host)}"

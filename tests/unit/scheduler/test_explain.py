"""ExplainPlacement: per filter what it removed and why, the ranking, the host a create would
get, or the NO_VALID_HOST a create would fail with; and nothing claimed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.core import claims, keys
from services.core.errors import ResourceExhausted
from services.core.etcd import Store
from services.scheduler.manager import SchedulerManager
from services.scheduler.options import OptionsWatcher
from services.scheduler.options_model import SchedulerOptions
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2


@pytest.fixture
async def manager(store: Store) -> AsyncIterator[SchedulerManager]:
    for name, ram, alive in (("h1", 2048, True), ("h2", 8192, True), ("h3", 4096, True), ("dead", 65536, False)):
        caps = state_pb2.HostCapabilities(host=name, vcpus=8, ram_mb=ram, disk_gb=100)
        await store.put(keys.host_capabilities(name), caps.SerializeToString())
        if alive:
            record = state_pb2.ServiceRecord(binary="compute", host=name, endpoint=f"{name}:1")
            await store.put(keys.service("compute", name), record.SerializeToString())
    m = SchedulerManager(store, options=OptionsWatcher(SchedulerOptions().option_values()))
    await m.start()
    yield m
    await m.stop()


def spec(ram_mb: int) -> scheduler_pb2.RequestSpec:
    return scheduler_pb2.RequestSpec(
        instance_id="i-1", resources=servers_pb2.ServerResources(vcpus=1, ram_mb=ram_mb, disk_gb=1)
    )


async def test_explain_ranks_and_selects_without_claiming(store: Store, manager: SchedulerManager) -> None:
    out = await manager.explain_placement(spec(3000))
    results = {f.filter: f for f in out.filters}
    assert [f.filter for f in out.filters] == manager.config.options["enabled_filters"]
    compute = results["ComputeFilter"]
    assert (compute.hosts_in, compute.hosts_out) == (4, 1)
    assert list(compute.examples) == ["dead: compute service is down"]
    ram = results["RamFilter"]
    assert (ram.hosts_in, ram.hosts_out, ram.summary) == (3, 1, "3000 MB RAM needed, at most 2048 MB free")
    assert list(ram.examples) == ["h1: 3000 MB RAM needed, 2048 MB free"]
    assert (results["DiskFilter"].hosts_in, results["DiskFilter"].hosts_out) == (2, 0)
    assert [h.host for h in out.hosts] == ["h2", "h3"]
    assert out.hosts[0].weight > out.hosts[1].weight
    assert out.selected_host == "h2" and out.message == "" and dict(out.metadata) == {}
    for name in ("h1", "h2", "h3"):
        assert (await claims.read_usage(store, name))[0].claims == {}


async def test_explain_says_what_a_create_would_fail_with(manager: SchedulerManager) -> None:
    out = await manager.explain_placement(spec(10_000))
    with pytest.raises(ResourceExhausted) as info:
        await manager.select_destinations(spec(10_000))
    assert out.selected_host == "" and not out.hosts
    assert out.message == info.value.message
    assert dict(out.metadata) == info.value.metadata == {"filter": "RamFilter", "resource": "ram_mb"}
    assert "RamFilter removed 3 of 3 hosts (10000 MB RAM needed, at most 8192 MB free)" in out.message

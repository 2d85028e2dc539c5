"""The scheduling core over a host table: ranking, host_subset_size, the chance driver, and the
table's bookkeeping: pure, no I/O."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from services.core.claims import Totals
from services.scheduler.chains import EngineConfig, engine_config
from services.scheduler.engine import Engine
from services.scheduler.host_state import HostState
from services.scheduler.options_model import SchedulerOptions
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import HostTable
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servers_pb2


def host(name: str, ram_mb: int, *, alive: bool = True, az: str = "az1", **caps: Any) -> HostState:
    capabilities = state_pb2.HostCapabilities(
        host=name, vcpus=caps.pop("vcpus", 8), ram_mb=ram_mb, disk_gb=100, availability_zone=az, **caps
    )
    return HostState(name, capabilities, alive=alive)


def setup(*hosts: HostState, rng: random.Random | None = None) -> tuple[HostTable, Engine]:
    states = {h.host: h for h in hosts}
    table = HostTable()
    for h in hosts:
        table.update(h.host, h)
    return table, Engine(table, states.get, rng)


def config(**options: Any) -> EngineConfig:
    return engine_config({**SchedulerOptions().option_values(), **options})


def request(ram_mb: int = 512, **fields: Any) -> SchedulingRequest:
    return SchedulingRequest.of(
        scheduler_pb2.RequestSpec(
            instance_id="i-1", resources=servers_pb2.ServerResources(vcpus=1, ram_mb=ram_mb, disk_gb=1), **fields
        )
    )


def test_rank_orders_by_weight_and_counts_what_passed() -> None:
    _, engine = setup(host("a", 1024), host("b", 8192), host("c", 4096), host("down", 16384, alive=False))
    ranking = engine.rank(config(), request(), 10)
    assert ranking.hosts == ["b", "c", "a"] and ranking.passed == 3
    assert ranking.weights[0] > ranking.weights[1] > ranking.weights[2]
    assert engine.rank(config(), request(ram_mb=5000), 10).hosts == ["b"]
    assert not engine.rank(config(), request(ram_mb=10**6), 10)


def test_availability_zone_from_aggregate_wins() -> None:
    zone2 = aggregates_pb2.Aggregate(id="z", metadata={"availability_zone": "az2"})
    moved = HostState("b", host("b", 8192).capabilities, aggregates=(zone2,))
    _, engine = setup(host("a", 1024), moved)
    assert engine.rank(config(), request(availability_zone="az2"), 5).hosts == ["b"]
    assert engine.rank(config(), request(availability_zone="az1"), 5).hosts == ["a"]
    assert engine.rank(config(), request(availability_zone="nowhere"), 5).hosts == []


def test_reserved_resources_count_against_the_host() -> None:
    _, engine = setup(host("a", 4096, reserved_ram_mb=3584), host("b", 2048))
    assert engine.rank(config(), request(ram_mb=1024), 5).hosts == ["b"]


def test_pending_claims_count_against_the_host() -> None:
    table, engine = setup(host("a", 4096), host("b", 2048))
    assert engine.rank(config(), request(ram_mb=1024), 5).hosts == ["a", "b"]
    table.set_pending("a", Totals(1, 3584, 1, 1))
    assert engine.rank(config(), request(ram_mb=1024), 5).hosts == ["b"]
    table.set_pending("a", Totals())
    assert engine.rank(config(), request(ram_mb=1024), 5).hosts == ["a", "b"]


def test_host_subset_size_picks_at_random_among_the_best_n() -> None:
    hosts = [host(f"h{i}", 1024 * (i + 1)) for i in range(6)]  # h5 best, then h4, h3, ...
    _, engine = setup(*hosts, rng=random.Random(3))
    cfg = config(host_subset_size=3)
    picks: Counter[str] = Counter()
    for _ in range(300):
        ranking = engine.rank(cfg, request(), cfg.host_subset_size + 2)
        chosen, others = engine.pick(ranking, cfg.host_subset_size)
        assert sorted([chosen, *others]) == ["h1", "h2", "h3", "h4", "h5"]
        picks[chosen] += 1
    assert set(picks) == {"h5", "h4", "h3"}
    assert min(picks.values()) > 50
    assert engine.pick(engine.rank(config(), request(), 3), 1)[0] == "h5"  # size 1: always the best


def test_chance_driver_picks_any_host_that_has_room() -> None:
    hosts = [host("small", 256), host("down", 8192, alive=False), host("other-zone", 4096, az="az9")]
    hosts += [host(f"h{i}", 2048) for i in range(4)]
    _, engine = setup(*hosts, rng=random.Random(5))
    cfg = config(scheduler_driver="chance")
    seen: Counter[str] = Counter()
    for _ in range(400):
        ranking = engine.rank(cfg, request(ignore_hosts=["h3"]), 1)
        seen[ranking.hosts[0]] += 1
    assert set(seen) == {"h0", "h1", "h2", "other-zone"}  # no zone filter in the chance driver
    assert min(seen.values()) > 50


def test_table_rows_are_reused_and_counts_kept() -> None:
    table, engine = setup(host("a", 1024), host("b", 2048))
    table.update("a", None)
    assert len(table) == 1 and table.size == 2
    table.update("c", host("c", 4096))
    assert table.size == 2 and table.index["c"] == 0
    assert engine.rank(config(), request(), 5).hosts == ["c", "b"]


def test_aggregate_multiplier_overrides_the_weigher() -> None:
    stack = aggregates_pb2.Aggregate(id="s", metadata={"ram_weight_multiplier": "-1"})
    big = HostState("big", host("big", 8192).capabilities, aggregates=(stack,))
    _, engine = setup(big, host("small", 1024), host("mid", 4096))
    ranking = engine.rank(config(weighers=["RamWeigher"]), request(), 5)
    assert ranking.hosts == ["mid", "small", "big"]  # big weighs -1 x 1.0

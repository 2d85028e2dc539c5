"""The vectorized engine (full pass and incremental views) agrees with the per-host filters and
weighers, to the last bit, on random hosts, requests, options and changes: pure, no I/O."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.scheduler.chains import EngineConfig, engine_config
from services.scheduler.engine import Engine
from services.scheduler.filtering import FilterRun
from services.scheduler.host_state import HostState
from services.scheduler.options_model import SchedulerOptions
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import HostTable
from services.scheduler.weighers import weigh_hosts
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servergroups_pb2, servers_pb2

ZONES = ("az1", "az2", "az3")
EXTRA_FILTERS = ["NumInstancesFilter", "IoOpsFilter", "AllHostsFilter"]


def random_aggregates(rng: random.Random) -> tuple[aggregates_pb2.Aggregate, ...]:
    out = []
    for i in range(rng.choice((0, 0, 1, 2))):
        metadata: dict[str, str] = {}
        if rng.random() < 0.3:
            metadata["availability_zone"] = rng.choice(ZONES)
        for key, values in (
            ("ram_allocation_ratio", ("0.5", "1.5", "2", "bad")),
            ("cpu_allocation_ratio", ("1", "8", "16.5")),
            ("disk_allocation_ratio", ("0.9", "3")),
            ("ram_weight_multiplier", ("-1", "0", "2.5")),
            ("cpu_weight_multiplier", ("3", "-0.5")),
            ("io_ops_weight_multiplier", ("1", "x")),
        ):
            if rng.random() < 0.2:
                metadata[key] = rng.choice(values)
        out.append(aggregates_pb2.Aggregate(id=f"agg-{i}", metadata=metadata))
    return tuple(out)


def random_host(rng: random.Random, name: str) -> HostState:
    vcpus, ram, disk = rng.choice((4, 16, 64)), rng.choice((2048, 8192, 65536)), rng.choice((20, 100, 1000))
    caps = state_pb2.HostCapabilities(
        host=name, vcpus=vcpus, ram_mb=ram, disk_gb=disk, availability_zone=rng.choice(ZONES),
        reserved_vcpus=rng.choice((0, 0, 1, 2)), reserved_ram_mb=rng.choice((0, 0, 512)),
        reserved_disk_gb=rng.choice((0, 0, 10)),
    )  # fmt: skip
    usage = state_pb2.HostUsage()
    for i in range(rng.choice((0, 1, 2, 5))):
        usage.claims[f"{name}-c{i}"].CopyFrom(
            state_pb2.Claim(instance_id=f"{name}-c{i}", vcpus=rng.randint(0, vcpus), ram_mb=rng.randint(0, ram // 2),
                            disk_gb=rng.randint(0, disk // 2))
        )  # fmt: skip
    stats = state_pb2.HostStats(io_ops=rng.choice((0, 0, 0, 3, 9)), failed_builds=rng.choice((0, 0, 0, 1, 4)))
    unreported = frozenset(c for c in usage.claims if rng.random() < 0.3)  # builds not reported yet
    caps.degraded_reason = "hypervisor hung" if rng.random() < 0.1 else ""
    return HostState(
        name, caps, usage, usage_revision=1, alive=rng.random() > 0.1, enabled=rng.random() > 0.1,
        forced_down=rng.random() < 0.05, stats=stats, aggregates=random_aggregates(rng), unreported=unreported,
    )  # fmt: skip


def random_options(rng: random.Random) -> dict[str, Any]:
    options = SchedulerOptions().option_values()
    options["enabled_filters"] = [*options["enabled_filters"], *rng.sample(EXTRA_FILTERS, rng.randint(0, 3))]
    options["cpu_allocation_ratio"] = rng.choice((1.0, 4.0, 16.0))
    options["ram_allocation_ratio"] = rng.choice((1.0, 1.5))
    options["max_instances_per_host"] = rng.choice((2, 5, 50))
    options["max_io_ops_per_host"] = rng.choice((0, 4, 8))
    options["weight_multipliers"] = {
        "RamWeigher": rng.choice((1.0, -1.0, 0.0)), "NumInstancesWeigher": rng.choice((0.0, 1.0, -2.0)),
        "DiskWeigher": rng.choice((1.0, 0.25)),
    }  # fmt: skip
    return options


def random_spec(rng: random.Random, names: list[str]) -> scheduler_pb2.RequestSpec:
    return scheduler_pb2.RequestSpec(
        instance_id=f"i-{rng.randrange(10**6)}",
        resources=servers_pb2.ServerResources(
            vcpus=rng.choice((1, 2, 8)), ram_mb=rng.choice((512, 2048, 16384)), disk_gb=rng.choice((1, 20, 200))
        ),
        availability_zone=rng.choice(("", "", *ZONES)),
        ignore_hosts=rng.sample(names, rng.choice((0, 0, 1, 3))),
    )


def random_group(rng: random.Random, names: list[str]) -> state_pb2.ServerGroupRecord | None:
    if rng.random() < 0.4:
        return None
    policy = rng.choice(list(servergroups_pb2.ServerGroupPolicy.values()))
    record = state_pb2.ServerGroupRecord(
        group=servergroups_pb2.ServerGroup(
            id="g", policy=policy, rules=servergroups_pb2.ServerGroupRules(max_server_per_host=rng.choice((0, 1, 2)))
        )
    )
    for i in range(rng.choice((0, 1, 3, 6))):
        record.placements[f"m{i}"] = rng.choice(names)
    return record


def reference(config: EngineConfig, request: SchedulingRequest, states: list[HostState]) -> list[tuple[str, float]]:
    """The per-host path: every filter's host_passes, then weigh_hosts."""
    survivors = FilterRun(config.filters, request).run(states)
    return [(w.host.host, w.weight) for w in weigh_hosts(config.weighers, survivors, request)]


class World:
    def __init__(self, seed: int, hosts: int = 40) -> None:
        self.rng = random.Random(seed)
        self.states = {f"h{i:03d}": random_host(self.rng, f"h{i:03d}") for i in range(hosts)}
        self.table = HostTable(capacity=8)  # grows while loading
        for name, state in self.states.items():
            self.table.update(name, state)
        self.incremental = Engine(self.table, self.states.get)
        self.full = Engine(self.table, self.states.get)
        self.full.incremental = False

    def check(
        self, config: EngineConfig, spec: scheduler_pb2.RequestSpec, group: state_pb2.ServerGroupRecord | None = None
    ) -> None:
        request = SchedulingRequest.of(spec, group)
        expected = reference(config, request, [self.states[n] for n in sorted(self.states)])
        for engine in (self.full, self.incremental):
            ranking = engine.rank(config, request, max(len(expected), 1))
            assert list(zip(ranking.hosts, ranking.weights, strict=True)) == expected
            assert ranking.passed == len(expected)
        if expected:  # the shortlist path with a small limit
            top = self.incremental.rank(config, request, 3)
            assert list(zip(top.hosts, top.weights, strict=True)) == expected[:3]

    def mutate(self) -> None:
        """A claim landing, a pending claim, a host going down or its hypervisor hanging, or a new host."""
        name = self.rng.choice(sorted(self.states))
        state, roll = self.states[name], self.rng.random()
        if roll < 0.5:
            usage = state_pb2.HostUsage()
            usage.CopyFrom(state.usage)
            claim_id = f"new-{self.rng.randrange(10**6)}"
            usage.claims[claim_id].CopyFrom(state_pb2.Claim(instance_id=claim_id, vcpus=2, ram_mb=1024, disk_gb=10))
            self.states[name] = state.with_usage(usage, state.usage_revision + 1, state.pending, track=True)
        elif roll < 0.8:
            pending = self.table.pending(name)
            grown = type(pending)(pending.vcpus + 1, pending.ram_mb + 512, pending.disk_gb + 5, pending.instances + 1)
            self.table.set_pending(name, grown)
            self.states[name] = state.with_pending(grown)
            return
        elif roll < 0.85:
            self.states[name] = HostState(name, state.capabilities, state.usage, state.usage_revision,
                                          alive=not state.alive, aggregates=state.aggregates,
                                          pending=state.pending)  # fmt: skip
        elif roll < 0.9:  # its hypervisor hangs, or answers again
            caps = state_pb2.HostCapabilities()
            caps.CopyFrom(state.capabilities)
            caps.degraded_reason = "" if caps.degraded_reason else "hypervisor hung"
            self.states[name] = HostState(name, caps, state.usage, state.usage_revision, alive=state.alive,
                                          aggregates=state.aggregates, pending=state.pending)  # fmt: skip
        else:
            name = f"n{len(self.states):03d}"
            self.states[name] = random_host(self.rng, name)
        self.table.update(name, self.states[name])


@pytest.mark.parametrize("seed", range(40))
def test_fast_and_per_host_paths_agree(seed: int) -> None:
    world = World(seed)
    config = engine_config(random_options(world.rng))
    specs = [random_spec(world.rng, sorted(world.states)) for _ in range(3)]
    groups = [random_group(world.rng, sorted(world.states)) for _ in specs]
    for _ in range(25):
        for spec, group in zip(specs, groups, strict=True):
            world.check(config, spec, group)
        for _ in range(world.rng.choice((1, 1, 2, 6))):
            world.mutate()


def test_agreement_when_hosts_are_removed() -> None:
    world = World(7)
    config = engine_config(SchedulerOptions().option_values())
    spec = random_spec(world.rng, [])
    world.check(config, spec)
    for name in ("h003", "h010", "h011"):
        del world.states[name]
        world.table.update(name, None)
        world.check(config, spec)
    world.states["h010"] = random_host(world.rng, "h010")  # reuses a free row
    world.table.update("h010", world.states["h010"])
    world.check(config, spec)


def test_ties_go_to_the_host_name() -> None:
    world = World(1, hosts=0)
    for name in ("c", "a", "d", "b"):
        caps = state_pb2.HostCapabilities(host=name, vcpus=8, ram_mb=8192, disk_gb=100)
        world.states[name] = HostState(name, caps)
        world.table.update(name, world.states[name])
    config = engine_config(SchedulerOptions().option_values())
    spec = scheduler_pb2.RequestSpec(instance_id="i", resources=servers_pb2.ServerResources(vcpus=1))
    assert world.incremental.rank(config, SchedulingRequest.of(spec), 3).hosts == ["a", "b", "c"]
    world.check(config, spec)

"""The weighers beyond RAM, their options and per-aggregate multipliers: pure table tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from services.scheduler.host_state import HostState
from services.scheduler.request import Policy, SchedulingRequest
from services.scheduler.weighers import WEIGHERS, Weigher, build_weighers, weigh_hosts
from services.scheduler.weighers.build_failure import BuildFailureWeigher
from services.scheduler.weighers.cpu import CPUWeigher
from services.scheduler.weighers.disk import DiskWeigher
from services.scheduler.weighers.io_ops import IoOpsWeigher
from services.scheduler.weighers.num_instances import NumInstancesWeigher
from services.scheduler.weighers.ram import RamWeigher
from services.scheduler.weighers.server_group import ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servergroups_pb2

SOFT_AFF = Policy.SERVER_GROUP_POLICY_SOFT_AFFINITY
SOFT_ANTI = Policy.SERVER_GROUP_POLICY_SOFT_ANTI_AFFINITY


def host(
    name: str,
    *,
    vcpus: int = 8,
    ram_mb: int = 8192,
    disk_gb: int = 100,
    instances: int = 0,
    io_ops: int = 0,
    failed: int = 0,
    aggs: Sequence[Mapping[str, str]] = (),
) -> HostState:
    usage = state_pb2.HostUsage()
    for i in range(instances):
        usage.claims[f"{name}-{i}"].CopyFrom(state_pb2.Claim(instance_id=f"{name}-{i}", vcpus=1))
    return HostState(
        host=name,
        capabilities=state_pb2.HostCapabilities(host=name, vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb),
        usage=usage,
        stats=state_pb2.HostStats(io_ops=io_ops, failed_builds=failed),
        aggregates=tuple(aggregates_pb2.Aggregate(id=f"a{i}", metadata=m, hosts=[name]) for i, m in enumerate(aggs)),
    )


def req(policy: int = 0, placements: Mapping[str, str] | None = None) -> SchedulingRequest:
    spec = scheduler_pb2.RequestSpec(instance_id="i-new")
    if not policy:
        return SchedulingRequest.of(spec)
    group = servergroups_pb2.ServerGroup(id="g1", name="web", policy=policy)  # type: ignore[arg-type]
    return SchedulingRequest.of(spec, state_pb2.ServerGroupRecord(group=group, placements=placements or {}))


def order(weighers: Sequence[Weigher], hosts: Sequence[HostState], request: SchedulingRequest) -> list[str]:
    return [w.host.host for w in weigh_hosts(weighers, hosts, request)]


PLAIN = req()
GROUP = {"m1": "b", "m2": "b", "m3": "c", "i-new": "a"}  # the instance itself does not count
CASES: dict[str, tuple[Sequence[Weigher], Sequence[HostState], SchedulingRequest, list[str]]] = {
    "cpu-spread": (
        [CPUWeigher()],
        [host("a", vcpus=4), host("b", vcpus=16), host("c", vcpus=8)],
        PLAIN,
        ["b", "c", "a"],
    ),
    "cpu-stack": (
        [CPUWeigher(-1.0)],
        [host("a", vcpus=4), host("b", vcpus=16), host("c", vcpus=8)],
        PLAIN,
        ["a", "c", "b"],
    ),
    # free = vcpus * cpu_allocation_ratio - used, as Nova's: 16 * 4.0 - 12 = 52 beats 8 * 4.0 = 32 ...
    "cpu-counts-free-after-ratio": (
        [CPUWeigher()], [host("a", vcpus=16, instances=12), host("b", vcpus=8)], PLAIN, ["a", "b"]
    ),
    # ... and at 1.0, 16 - 12 = 4 loses to 8.
    "cpu-counts-free": (
        [CPUWeigher(allocation_ratio=1.0)], [host("a", vcpus=16, instances=12), host("b", vcpus=8)], PLAIN, ["b", "a"]
    ),
    # an over-committed host scores 0 (Nova's minval), not below: it ties with a full one
    "cpu-over-committed-scores-zero": (
        [CPUWeigher(allocation_ratio=1.0)],
        [host("a", vcpus=2, instances=5), host("b", vcpus=2, instances=2), host("c", vcpus=4)],
        PLAIN,
        ["c", "a", "b"],
    ),
    "disk-spread": ([DiskWeigher()], [host("a", disk_gb=10), host("b", disk_gb=500)], PLAIN, ["b", "a"]),
    "disk-stack": ([DiskWeigher(-1.0)], [host("a", disk_gb=10), host("b", disk_gb=500)], PLAIN, ["a", "b"]),
    "io-ops-default-least-busy": (
        [IoOpsWeigher()],
        [host("a", io_ops=5), host("b", io_ops=0), host("c", io_ops=2)],
        PLAIN,
        ["b", "c", "a"],
    ),
    "num-instances-default-off": (
        [NumInstancesWeigher()],
        [host("b", instances=0), host("a", instances=3)],
        PLAIN,
        ["a", "b"],
    ),
    "num-instances-pack": ([NumInstancesWeigher(1.0)], [host("a"), host("b", instances=3)], PLAIN, ["b", "a"]),
    "num-instances-spread": ([NumInstancesWeigher(-1.0)], [host("a", instances=2), host("b")], PLAIN, ["b", "a"]),
    "soft-affinity": (
        [ServerGroupSoftAffinityWeigher()],
        [host("a"), host("b"), host("c")],
        req(SOFT_AFF, GROUP),
        ["b", "c", "a"],
    ),
    "soft-affinity-other-policy": (
        [ServerGroupSoftAffinityWeigher()],
        [host("c"), host("b"), host("a")],
        req(SOFT_ANTI, GROUP),
        ["a", "b", "c"],
    ),
    "soft-anti-affinity": (
        [ServerGroupSoftAntiAffinityWeigher()],
        [host("a"), host("b"), host("c")],
        req(SOFT_ANTI, GROUP),
        ["a", "c", "b"],
    ),
    "soft-anti-affinity-no-group": (
        [ServerGroupSoftAntiAffinityWeigher()],
        [host("b"), host("a")],
        PLAIN,
        ["a", "b"],
    ),
    "build-failures-sink": (
        [RamWeigher(), BuildFailureWeigher()],
        [host("a", ram_mb=65536, failed=1), host("b", ram_mb=1024), host("c", ram_mb=65536, failed=3)],
        PLAIN,
        ["b", "a", "c"],
    ),
    "aggregate-multiplier-reverses-one-host": (
        [CPUWeigher()],
        [host("a", vcpus=16, aggs=[{"cpu_weight_multiplier": "-1.0"}]), host("b", vcpus=8)],
        PLAIN,
        ["b", "a"],
    ),
}


@pytest.mark.parametrize(("weighers", "hosts", "request_", "expected"), CASES.values(), ids=CASES.keys())
def test_weighers(
    weighers: Sequence[Weigher], hosts: Sequence[HostState], request_: SchedulingRequest, expected: list[str]
) -> None:
    assert order(weighers, hosts, request_) == expected


@pytest.mark.parametrize(
    ("weigher", "aggs", "expected"),
    [
        (CPUWeigher(), [], 1.0),
        (CPUWeigher(), [{"cpu_weight_multiplier": "2.5"}], 2.5),
        (CPUWeigher(), [{"cpu_weight_multiplier": "3"}, {"cpu_weight_multiplier": "-2"}], -2.0),
        (CPUWeigher(), [{"cpu_weight_multiplier": "lots"}], 1.0),
        (CPUWeigher(), [{"ram_weight_multiplier": "5"}], 1.0),
        (DiskWeigher(), [{"disk_weight_multiplier": "0"}], 0.0),
        (IoOpsWeigher(), [{"io_ops_weight_multiplier": "-3"}], -3.0),
        (NumInstancesWeigher(), [{"num_instances_weight_multiplier": "1"}], 1.0),
        (BuildFailureWeigher(), [{"build_failure_weight_multiplier": "10"}], 10.0),
        (ServerGroupSoftAffinityWeigher(), [{"soft_affinity_weight_multiplier": "4"}], 4.0),
        (ServerGroupSoftAntiAffinityWeigher(), [{"soft_anti_affinity_weight_multiplier": "5"}], 5.0),
    ],
)
def test_aggregate_multiplier(weigher: Weigher, aggs: Sequence[Mapping[str, str]], expected: float) -> None:
    assert weigher.weight_multiplier(host("h", aggs=aggs)) == expected


DEFAULTS = {
    "BuildFailureWeigher": 1e6,
    "CPUWeigher": 1.0,
    "DiskWeigher": 1.0,
    "IoOpsWeigher": -1.0,
    "NumInstancesWeigher": 0.0,
    "RamWeigher": 1.0,
    "ServerGroupSoftAffinityWeigher": 1.0,
    "ServerGroupSoftAntiAffinityWeigher": 1.0,
}


def test_registry_names_and_default_multipliers() -> None:
    assert set(WEIGHERS) == set(DEFAULTS)
    built = build_weighers(list(DEFAULTS), {})
    assert {w.name: w.multiplier for w in built} == DEFAULTS


@pytest.mark.parametrize(
    ("multipliers", "options", "expected"),
    [
        ({}, {"cpu_weight_multiplier": 2}, 2.0),
        ({}, {"cpu_weight_multiplier": "-0.5"}, -0.5),
        ({"CPUWeigher": 3.0}, {}, 3.0),
        ({"CPUWeigher": 3.0}, {"cpu_weight_multiplier": 2}, 3.0),
        ({"CPUWeigher": 3.0}, {"weight_multipliers": {"CPUWeigher": 4}}, 4.0),
        ({}, {"weight_multipliers": {"DiskWeigher": 4}}, 1.0),
    ],
)
def test_multiplier_sources(multipliers: dict[str, float], options: dict[str, Any], expected: float) -> None:
    (cpu,) = build_weighers(["CPUWeigher"], multipliers, options)
    assert cpu.multiplier == expected


def test_build_failure_multiplier_from_options() -> None:
    (weigher,) = build_weighers(["BuildFailureWeigher"], {}, {"build_failure_weight_multiplier": 50})
    assert weigher.multiplier == 50.0


@pytest.mark.parametrize(
    ("multipliers", "options", "message"),
    [
        ({}, {"io_ops_weight_multiplier": "fast"}, "io_ops_weight_multiplier must be a number"),
        ({}, {"io_ops_weight_multiplier": True}, "io_ops_weight_multiplier must be a number"),
        ({}, {"weight_multipliers": {"Bogus": 1}}, "unknown scheduler weigher.*'Bogus'"),
        ({}, {"weight_multipliers": [1]}, "weight_multipliers must map weigher names"),
        ({"Typo": 1.0}, {}, "unknown scheduler weigher.*'Typo'"),
    ],
)
def test_bad_multipliers_refuse_to_build(multipliers: dict[str, float], options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_weighers(["IoOpsWeigher"], multipliers, options)


@pytest.mark.parametrize(
    ("weigher", "request_", "expected"),
    [
        (ServerGroupSoftAffinityWeigher(), PLAIN, False),
        (ServerGroupSoftAffinityWeigher(), req(SOFT_AFF, {}), False),
        (ServerGroupSoftAffinityWeigher(), req(SOFT_AFF, GROUP), True),
        (ServerGroupSoftAffinityWeigher(), req(SOFT_ANTI, GROUP), False),
        (ServerGroupSoftAntiAffinityWeigher(), req(SOFT_ANTI, GROUP), True),
        (ServerGroupSoftAntiAffinityWeigher(), PLAIN, False),
        (CPUWeigher(), PLAIN, True),
        (BuildFailureWeigher(), PLAIN, True),
    ],
)
def test_is_relevant(weigher: Weigher, request_: SchedulingRequest, expected: bool) -> None:
    assert weigher.is_relevant(request_) is expected


def test_negative_soft_affinity_multiplier_warns(caplog: pytest.LogCaptureFixture) -> None:
    build_weighers(["ServerGroupSoftAffinityWeigher"], {}, {"soft_affinity_weight_multiplier": -1})
    assert "soft_affinity_weight_multiplier=-1.0: only a positive value is meaningful" in caplog.text

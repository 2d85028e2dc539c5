"""Weighing: normalisation, the RAM weigher, multipliers and the registry: pure, no I/O."""

from __future__ import annotations

import pytest

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers import WEIGHERS, Weigher, build_weighers, normalize, weigh_hosts
from services.scheduler.weighers.ram import RamWeigher
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2

SPEC = scheduler_pb2.RequestSpec(instance_id="i-1")


def host(name: str, ram_mb: int, vcpus: int = 4) -> HostState:
    return HostState(host=name, capabilities=state_pb2.HostCapabilities(host=name, ram_mb=ram_mb, vcpus=vcpus))


@pytest.mark.parametrize(
    ("values", "minval", "maxval", "expected"),
    [
        ([], None, None, []),
        ([5.0], None, None, [0.0]),
        ([5.0, 5.0], None, None, [0.0, 0.0]),
        ([0.0, 5.0, 10.0], None, None, [0.0, 0.5, 1.0]),
        ([2.0, 4.0], 0.0, 8.0, [0.25, 0.5]),
        ([10.0, 20.0], 10.0, None, [0.0, 1.0]),
    ],
)
def test_normalize(values: list[float], minval: float | None, maxval: float | None, expected: list[float]) -> None:
    assert normalize(values, minval, maxval) == expected


def order(weighers: list[Weigher], hosts: list[HostState]) -> list[str]:
    return [w.host.host for w in weigh_hosts(weighers, hosts, SchedulingRequest.of(SPEC))]


@pytest.mark.parametrize(
    ("multiplier", "expected"),
    [
        (1.0, ["b", "c", "a"]),  # spread: most free RAM first
        (-1.0, ["a", "c", "b"]),  # stack: least free RAM first
        (0.0, ["a", "b", "c"]),  # no preference: host name order
    ],
)
def test_ram_weigher(multiplier: float, expected: list[str]) -> None:
    hosts = [host("a", 1024), host("b", 8192), host("c", 4096)]
    assert order([RamWeigher(multiplier)], hosts) == expected


def test_ram_weigher_counts_free_not_total() -> None:
    usage = state_pb2.HostUsage(claims={"x": state_pb2.Claim(instance_id="x", ram_mb=7168)})
    busy = HostState(host="big", capabilities=state_pb2.HostCapabilities(ram_mb=8192), usage=usage)
    assert order([RamWeigher()], [busy, host("small", 2048)]) == ["small", "big"]


class CpuWeigher(Weigher):
    name = "CpuWeigher"

    def weigh(self, host: HostState, request: SchedulingRequest) -> float:
        return float(host.free_vcpus)


def test_weights_are_normalised_then_multiplied_and_summed() -> None:
    hosts = [host("a", ram_mb=8192, vcpus=1), host("b", ram_mb=1024, vcpus=16)]
    weighed = weigh_hosts([RamWeigher(1.0), CpuWeigher(2.0)], hosts, SchedulingRequest.of(SPEC))
    # RAM normalises from its minval 0: b's 1024 of 8192 MB is 0.125; CPU from the lowest, 1: b is 1.0
    assert [(w.host.host, w.weight) for w in weighed] == [("b", 2.0 + 0.125), ("a", 1.0)]


def test_registry_applies_multipliers_and_refuses_unknown_names() -> None:
    (ram,) = build_weighers(["RamWeigher"], {"RamWeigher": -2.0})
    assert isinstance(ram, RamWeigher) and ram.multiplier == -2.0
    assert build_weighers(["RamWeigher"], {})[0].multiplier == 1.0
    assert "RamWeigher" in WEIGHERS
    with pytest.raises(ValueError, match=r"unknown scheduler weigher.*'Bogus'"):
        build_weighers(["RamWeigher", "Bogus"], {})
    with pytest.raises(ValueError, match="'Typo'"):
        build_weighers(["RamWeigher"], {"Typo": 1.0})

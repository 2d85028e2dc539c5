"""Each filter, the filter registry and the NO_VALID_HOST explanation: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.core.errors import ResourceExhausted
from services.scheduler.filtering import FilterRun
from services.scheduler.filters import (
    FILTERS,
    Filter,
    build_filters,
)
from services.scheduler.filters.availability_zone import AvailabilityZoneFilter
from services.scheduler.filters.compute import ComputeFilter
from services.scheduler.filters.core import CoreFilter
from services.scheduler.filters.disk import DiskFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.filters.retry import RetryFilter
from services.scheduler.host_state import HostState
from services.scheduler.options_model import DEFAULT_FILTERS
from services.scheduler.request import SchedulingRequest
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servers_pb2


def host(
    name: str = "h1",
    *,
    vcpus: int = 8,
    ram_mb: int = 8192,
    disk_gb: int = 100,
    used: tuple[int, int, int] = (0, 0, 0),
    az: str = "",
    alive: bool = True,
    enabled: bool = True,
    forced_down: bool = False,
    disabled_reason: str = "",
    reserved: tuple[int, int, int] = (0, 0, 0),
    aggregates: tuple[aggregates_pb2.Aggregate, ...] = (),
    degraded_reason: str = "",
) -> HostState:
    """A host with one other instance using ``used`` = (vcpus, ram_mb, disk_gb), and ``reserved``
    held back for the host."""
    usage = state_pb2.HostUsage()
    if any(used):
        usage.claims["other"].CopyFrom(
            state_pb2.Claim(instance_id="other", vcpus=used[0], ram_mb=used[1], disk_gb=used[2])
        )
    return HostState(
        host=name,
        capabilities=state_pb2.HostCapabilities(
            host=name,
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=disk_gb,
            availability_zone=az,
            reserved_vcpus=reserved[0],
            reserved_ram_mb=reserved[1],
            reserved_disk_gb=reserved[2],
            degraded_reason=degraded_reason,
        ),
        usage=usage,
        alive=alive,
        enabled=enabled,
        forced_down=forced_down,
        disabled_reason=disabled_reason,
        aggregates=aggregates,
    )


def spec(
    *, vcpus: int = 1, ram_mb: int = 512, disk_gb: int = 1, az: str = "", ignore: Sequence[str] = ()
) -> scheduler_pb2.RequestSpec:
    return scheduler_pb2.RequestSpec(
        instance_id="i-1",
        project_id="p-1",
        resources=servers_pb2.ServerResources(vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb),
        availability_zone=az,
        ignore_hosts=list(ignore),
    )


CASES: list[tuple[str, Filter, HostState, scheduler_pb2.RequestSpec, str | None]] = [
    ("compute-ok", ComputeFilter(), host(), spec(), None),
    ("compute-down", ComputeFilter(), host(alive=False), spec(), "compute service is down"),
    ("compute-forced", ComputeFilter(), host(forced_down=True), spec(), "compute service is forced down"),
    ("compute-disabled", ComputeFilter(), host(enabled=False), spec(), "compute service is disabled"),
    (
        "compute-disabled-why",
        ComputeFilter(),
        host(enabled=False, disabled_reason="maintenance"),
        spec(),
        "compute service is disabled (maintenance)",
    ),
    (
        "compute-degraded",
        ComputeFilter(),
        host(degraded_reason="libvirt did not answer 'listing domains' within 60 s"),
        spec(),
        "hypervisor not answering (libvirt did not answer 'listing domains' within 60 s)",
    ),
    ("ram-fits-exactly", RamFilter(), host(ram_mb=4096, used=(0, 3072, 0)), spec(ram_mb=1024), None),
    (
        "ram-short",
        RamFilter(),
        host(ram_mb=4096, used=(0, 3072, 0)),
        spec(ram_mb=4096),
        "4096 MB RAM needed, 1024 MB free",
    ),
    ("ram-overcommitted", RamFilter(), host(ram_mb=1024, used=(0, 2048, 0)), spec(), "512 MB RAM needed, 0 MB free"),
    ("cores-fit-exactly", CoreFilter(1.0), host(vcpus=4, used=(2, 0, 0)), spec(vcpus=2), None),
    ("cores-short", CoreFilter(1.0), host(vcpus=4, used=(3, 0, 0)), spec(vcpus=2), "2 vCPU needed, 1 free"),
    ("cores-default-ratio-4", CoreFilter(), host(vcpus=4, used=(14, 0, 0)), spec(vcpus=2), None),
    ("cores-ratio-4-short", CoreFilter(), host(vcpus=4, used=(15, 0, 0)), spec(vcpus=2), "2 vCPU needed, 1 free"),
    ("ram-ratio-1.5", RamFilter(1.5), host(ram_mb=4096, used=(0, 4096, 0)), spec(ram_mb=2048), None),
    (
        "ram-ratio-fraction-floors",
        RamFilter(0.5),
        host(ram_mb=4097, used=(0, 0, 0)),
        spec(ram_mb=4096),
        "4096 MB RAM needed, 2048 MB free",
    ),
    ("disk-ratio-2", DiskFilter(2.0), host(disk_gb=20, used=(0, 0, 30)), spec(disk_gb=10), None),
    (
        "ram-reserved",
        RamFilter(),
        host(ram_mb=4096, used=(0, 1024, 0), reserved=(0, 2048, 0)),
        spec(ram_mb=2048),
        "2048 MB RAM needed, 1024 MB free",
    ),
    (
        "cores-reserved-after-ratio",
        CoreFilter(2.0),
        host(vcpus=4, reserved=(3, 0, 0)),
        spec(vcpus=6),
        "6 vCPU needed, 5 free",
    ),
    (
        "disk-reserved",
        DiskFilter(),
        host(disk_gb=100, reserved=(0, 0, 95)),
        spec(disk_gb=10),
        "10 GB disk needed, 5 GB free",
    ),
    ("disk-fits", DiskFilter(), host(disk_gb=20, used=(0, 0, 10)), spec(disk_gb=10), None),
    ("disk-short", DiskFilter(), host(disk_gb=20, used=(0, 0, 15)), spec(disk_gb=10), "10 GB disk needed, 5 GB free"),
    ("az-any", AvailabilityZoneFilter(), host(az="az1"), spec(), None),
    ("az-same", AvailabilityZoneFilter(), host(az="az1"), spec(az="az1"), None),
    (
        "az-other",
        AvailabilityZoneFilter(),
        host(az="az1"),
        spec(az="az2"),
        "in zone 'az1', zone 'az2' requested",
    ),
    ("retry-other-host", RetryFilter(), host("h1"), spec(ignore=["h2"]), None),
    ("retry-same-host", RetryFilter(), host("h1"), spec(ignore=["h2", "h1"]), "already failed this request"),
]


@pytest.mark.parametrize(("flt", "state", "request_spec", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter(flt: Filter, state: HostState, request_spec: scheduler_pb2.RequestSpec, reason: str | None) -> None:
    assert flt.host_passes(state, SchedulingRequest.of(request_spec)) == reason


def test_resource_filter_explains_with_the_best_refused_host() -> None:
    refused = [(host("a", ram_mb=1024), "x"), (host("b", ram_mb=512), "y")]
    explained = RamFilter().explain(SchedulingRequest.of(spec(ram_mb=4096)), refused)
    assert explained == "4096 MB RAM needed, at most 1024 MB free"


def test_other_filters_explain_with_a_sample() -> None:
    refused = [(host("a", alive=False), "compute service is down")]
    assert ComputeFilter().explain(SchedulingRequest.of(spec()), refused) == "a: compute service is down"


def test_registry_builds_in_order_and_refuses_unknown_names() -> None:
    assert [f.name for f in build_filters(DEFAULT_FILTERS)] == DEFAULT_FILTERS
    assert set(DEFAULT_FILTERS) <= set(FILTERS)
    with pytest.raises(ValueError, match=r"unknown scheduler filter.*'NoSuchFilter'.*known: .*AvailabilityZoneFilter"):
        build_filters(["RamFilter", "NoSuchFilter"])


def refusal(hosts: list[HostState], request_spec: scheduler_pb2.RequestSpec) -> ResourceExhausted:
    run = FilterRun(build_filters(DEFAULT_FILTERS, {"cpu_allocation_ratio": 1.0}), SchedulingRequest.of(request_spec))
    assert run.run(hosts) == []
    return run.no_valid_host()


def test_no_valid_host_names_the_filter_and_the_numbers() -> None:
    hosts = [host("a", ram_mb=1024), host("b", ram_mb=512), host("c", ram_mb=256)]
    err = refusal(hosts, spec(ram_mb=4096, vcpus=2, disk_gb=20))
    assert err.message == (
        "no valid host for 4096 MB / 2 vCPU / 20 GB: RamFilter removed 3 of 3 hosts "
        "(4096 MB RAM needed, at most 1024 MB free)"
    )
    assert err.reason == "NO_VALID_HOST"
    assert err.metadata == {"filter": "RamFilter", "resource": "ram_mb"}


def test_no_valid_host_lists_every_filter_that_removed_hosts() -> None:
    hosts = [host("a", alive=False), host("b", vcpus=1), host("c", disk_gb=5)]
    err = refusal(hosts, spec(vcpus=2, disk_gb=10))
    assert err.message == (
        "no valid host for 512 MB / 2 vCPU / 10 GB: ComputeFilter removed 1 of 3 hosts (a: compute service is down); "
        "CoreFilter removed 1 of 2 hosts (2 vCPU needed, at most 1 free); "
        "DiskFilter removed 1 of 1 host (10 GB disk needed, at most 5 GB free)"
    )
    assert err.metadata == {"filter": "DiskFilter", "resource": "disk_gb"}


def test_no_valid_host_without_hosts() -> None:
    err = refusal([], spec())
    assert err.message == "no valid host for 512 MB / 1 vCPU / 1 GB: no compute host has reported its capabilities"
    assert err.metadata == {}


def test_recheck_records_a_refusal_after_fresh_usage() -> None:
    run = FilterRun(build_filters(DEFAULT_FILTERS), SchedulingRequest.of(spec(ram_mb=2048)))
    assert run.run([host("a", ram_mb=2048)]) == [host("a", ram_mb=2048)]
    assert not run.recheck(host("a", ram_mb=2048, used=(0, 1024, 0)))
    err = run.no_valid_host()
    assert "RamFilter removed 1 of 1 host (2048 MB RAM needed, at most 1024 MB free)" in err.message
    assert err.metadata["filter"] == "RamFilter"


def aggregate(**metadata: str) -> aggregates_pb2.Aggregate:
    return aggregates_pb2.Aggregate(id="a", metadata=metadata)


@pytest.mark.parametrize(
    ("metadata", "free"),
    [
        ({}, 4096.0),  # the filter's own ratio (1.0)
        ({"ram_allocation_ratio": "2.0"}, 8192.0),
        ({"ram_allocation_ratio": "0.5"}, 2048.0),
        ({"ram_allocation_ratio": "typo"}, 4096.0),  # not a number: ignored, as Nova does
    ],
)
def test_aggregate_metadata_overrides_the_ratio(metadata: dict[str, str], free: float) -> None:
    state = host(ram_mb=4096, aggregates=(aggregate(**metadata),))
    assert RamFilter().free(state) == free


def test_the_smallest_aggregate_ratio_wins() -> None:
    state = host(vcpus=10, aggregates=(aggregate(cpu_allocation_ratio="3"), aggregate(cpu_allocation_ratio="1.5")))
    assert CoreFilter().free(state) == 15.0
    assert CoreFilter().host_passes(state, SchedulingRequest.of(spec(vcpus=16))) == "16 vCPU needed, 15 free"


@pytest.mark.parametrize(
    ("options", "ratios"),
    [
        ({}, (1.0, 4.0, 1.0)),
        ({"ram_allocation_ratio": 1.5, "cpu_allocation_ratio": "16", "disk_allocation_ratio": 2}, (1.5, 16.0, 2.0)),
    ],
)
def test_resource_filters_take_their_ratio_from_options(options: dict[str, object], ratios: tuple[float, ...]) -> None:
    built = (RamFilter.from_options(options), CoreFilter.from_options(options), DiskFilter.from_options(options))
    assert tuple(f.ratio for f in built) == ratios


@pytest.mark.parametrize("bad", [0, -1.0, "x", True, [1]])
def test_bad_ratios_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="ram_allocation_ratio"):
        RamFilter.from_options({"ram_allocation_ratio": bad})

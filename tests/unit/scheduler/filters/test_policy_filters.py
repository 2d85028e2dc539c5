"""The policy filters (everything beyond RAM/cores/disk/compute/zone/retry): pure table tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from services.scheduler.filters import FILTERS, Filter, build_filters
from services.scheduler.filters.aggregate_instance_extra_specs import AggregateInstanceExtraSpecsFilter
from services.scheduler.filters.aggregate_multitenancy import AggregateMultiTenancyIsolation
from services.scheduler.filters.all_hosts import AllHostsFilter
from services.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from services.scheduler.filters.image_properties import ImagePropertiesFilter
from services.scheduler.filters.io_ops import AggregateIoOpsFilter, IoOpsFilter
from services.scheduler.filters.isolated_hosts import IsolatedHostsFilter
from services.scheduler.filters.json_filter import JsonFilter
from services.scheduler.filters.num_instances import AggregateNumInstancesFilter, NumInstancesFilter
from services.scheduler.filters.same_host import DifferentHostFilter, SameHostFilter
from services.scheduler.filters.server_group import ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter
from services.scheduler.filters.trusted import TrustedFilter
from services.scheduler.filters.type_affinity import AggregateTypeAffinityFilter, TypeAffinityFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import Policy, SchedulingRequest
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servergroups_pb2, servers_pb2


def host(
    name: str = "h1",
    *,
    instances: Mapping[str, str] | None = None,
    io_ops: int = 0,
    aggs: Sequence[Mapping[str, str]] = (),
    **caps: Any,
) -> HostState:
    """A host with ``instances`` (id -> flavor id), aggregates with the given metadata, and
    ``caps`` as HostCapabilities fields."""
    usage = state_pb2.HostUsage()
    for instance_id, flavor in (instances or {}).items():
        usage.claims[instance_id].CopyFrom(state_pb2.Claim(instance_id=instance_id, flavor_id=flavor, vcpus=1))
    caps.setdefault("vcpus", 8)
    caps.setdefault("ram_mb", 8192)
    caps.setdefault("disk_gb", 100)
    return HostState(
        host=name,
        capabilities=state_pb2.HostCapabilities(host=name, **caps),
        usage=usage,
        stats=state_pb2.HostStats(io_ops=io_ops),
        aggregates=tuple(
            aggregates_pb2.Aggregate(id=f"a{i}", name=f"agg{i}", metadata=m, hosts=[name]) for i, m in enumerate(aggs)
        ),
    )


def req(
    *,
    extra: Mapping[str, str] | None = None,
    image: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
    project: str = "p1",
    flavor: tuple[str, str] = ("f1", "m1.small"),
    image_id: str = "",
    group: tuple[int, Mapping[str, str], int] | None = None,
) -> SchedulingRequest:
    """A request; ``group`` is (policy, placements instance -> host, max_server_per_host)."""
    spec = scheduler_pb2.RequestSpec(
        instance_id="i-new",
        project_id=project,
        resources=servers_pb2.ServerResources(vcpus=1, ram_mb=512, disk_gb=1),
        flavor_extra_specs=extra or {},
        image_properties=image or {},
        scheduler_hints=hints or {},
        flavor_id=flavor[0],
        flavor_name=flavor[1],
        image_id=image_id,
    )
    record = None
    if group is not None:
        policy, placements, max_per_host = group
        sg = servergroups_pb2.ServerGroup(
            id="g1",
            name="web",
            policy=policy,  # type: ignore[arg-type]
            rules=servergroups_pb2.ServerGroupRules(max_server_per_host=max_per_host),
            members=list(placements),
        )
        record = state_pb2.ServerGroupRecord(group=sg, placements=placements)
        spec.server_group_id = "g1"
    return SchedulingRequest.of(spec, record)


AFF, ANTI = Policy.SERVER_GROUP_POLICY_AFFINITY, Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY
ISO = IsolatedHostsFilter.from_options({"isolated_hosts": ["iso"], "isolated_images": "img-iso"})
ISO_LOOSE = IsolatedHostsFilter(["iso"], ["img-iso"], restrict=False)
QUERY = json.dumps(["and", [">=", "$free_ram_mb", 1024], ["<", "$num_instances", 2]])


def q(query: Any) -> SchedulingRequest:
    return req(hints={"query": query if isinstance(query, str) else json.dumps(query)})


Case = tuple[Filter, HostState, SchedulingRequest, str | None]
CASES: dict[str, Case] = {
    "all-hosts": (AllHostsFilter(), host(), req(), None),
    # NumInstancesFilter / AggregateNumInstancesFilter
    "num-under": (NumInstancesFilter(2), host(instances={"a": "f"}), req(), None),
    "num-at": (NumInstancesFilter(2), host(instances={"a": "f", "b": "f"}), req(), "2 instances on the host (max 2)"),
    "num-default-50": (NumInstancesFilter.from_options({}), host(instances={"a": "f"}), req(), None),
    "agg-num-meta": (
        AggregateNumInstancesFilter(5),
        host(instances={"a": "f"}, aggs=[{"max_instances_per_host": "3"}, {"max_instances_per_host": "1"}]),
        req(),
        "1 instances on the host (max 1)",
    ),
    "agg-num-bad-meta": (
        AggregateNumInstancesFilter(5),
        host(instances={"a": "f"}, aggs=[{"max_instances_per_host": "lots"}]),
        req(),
        None,
    ),
    "agg-num-option": (AggregateNumInstancesFilter(1), host(instances={"a": "f"}), req(), "(max 1)"),
    # IoOpsFilter / AggregateIoOpsFilter
    "io-under": (IoOpsFilter(2), host(io_ops=1), req(), None),
    "io-at": (IoOpsFilter(2), host(io_ops=2), req(), "2 I/O-heavy tasks running (max 2)"),
    "agg-io-meta": (AggregateIoOpsFilter(8), host(io_ops=2, aggs=[{"max_io_ops_per_host": "2"}]), req(), "(max 2)"),
    "agg-io-option": (AggregateIoOpsFilter(8), host(io_ops=2, aggs=[{"other": "x"}]), req(), None),
    # IsolatedHostsFilter
    "iso-host-iso-image": (ISO, host("iso"), req(image_id="img-iso"), None),
    "iso-host-other-image": (ISO, host("iso"), req(image_id="img-x"), "isolated host: runs only the isolated images"),
    "other-host-iso-image": (ISO, host("h1"), req(image_id="img-iso"), "image img-iso runs only on the isolated hosts"),
    "other-host-other-image": (ISO, host("h1"), req(image_id="img-x"), None),
    "loose-iso-host-other-image": (ISO_LOOSE, host("iso"), req(image_id="img-x"), None),
    "loose-other-host-iso-image": (ISO_LOOSE, host("h1"), req(image_id="img-iso"), "runs only on the isolated"),
    "iso-no-image": (ISO, host("iso"), req(), "isolated host"),
    "iso-no-images-configured": (IsolatedHostsFilter(["iso"]), host("iso"), req(image_id="x"), "isolated host"),
    # TrustedFilter
    "trusted-none": (TrustedFilter(), host(), req(), None),
    "trusted-ok": (TrustedFilter(), host(trusted=True), req(extra={"trust:trusted_host": "trusted"}), None),
    "trusted-bad": (
        TrustedFilter(),
        host(),
        req(extra={"trust:trusted_host": "trusted"}),
        "flavor needs a trusted host, host is untrusted",
    ),
    "untrusted-ok": (TrustedFilter(), host(), req(extra={"trust:trusted_host": "Untrusted"}), None),
    "untrusted-bad": (
        TrustedFilter(),
        host(trusted=True),
        req(extra={"trust:trusted_host": "untrusted"}),
        "is trusted",
    ),
    "trusted-level-bad": (TrustedFilter(), host(), req(extra={"trust:trusted_host": "maybe"}), "expected 'trusted'"),
    # TypeAffinityFilter / AggregateTypeAffinityFilter
    "type-empty-host": (TypeAffinityFilter(), host(), req(), None),
    "type-same": (TypeAffinityFilter(), host(instances={"a": "f1", "b": "f1"}), req(), None),
    "type-other": (
        TypeAffinityFilter(),
        host(instances={"a": "f1", "b": "f2"}),
        req(),
        "runs instances of other flavors (f2), flavor f1 needs a host of its own",
    ),
    "type-no-flavor": (TypeAffinityFilter(), host(instances={"a": "f2"}), req(flavor=("", "")), None),
    "agg-type-no-aggs": (AggregateTypeAffinityFilter(), host(), req(), None),
    "agg-type-ok": (AggregateTypeAffinityFilter(), host(aggs=[{"instance_type": "m1.large, m1.small"}]), req(), None),
    "agg-type-bad": (
        AggregateTypeAffinityFilter(),
        host(aggs=[{"instance_type": "m1.large,m1.xlarge"}]),
        req(),
        "aggregate allows only flavors m1.large, m1.xlarge, not m1.small",
    ),
    "agg-type-other-key": (AggregateTypeAffinityFilter(), host(aggs=[{"ssd": "true"}]), req(), None),
    # AggregateInstanceExtraSpecsFilter
    "aies-none": (AggregateInstanceExtraSpecsFilter(), host(), req(), None),
    "aies-ok": (
        AggregateInstanceExtraSpecsFilter(),
        host(aggs=[{"ssd": "true"}]),
        req(extra={"aggregate_instance_extra_specs:ssd": "true"}),
        None,
    ),
    "aies-bad": (
        AggregateInstanceExtraSpecsFilter(),
        host(aggs=[{"ssd": "false"}]),
        req(extra={"aggregate_instance_extra_specs:ssd": "true"}),
        "flavor needs aggregate metadata ssd 'true'; the host's aggregates have false",
    ),
    "aies-absent": (
        AggregateInstanceExtraSpecsFilter(),
        host(),
        req(extra={"aggregate_instance_extra_specs:ssd": "true"}),
        "the host's aggregates do not set it",
    ),
    "aies-unscoped": (
        AggregateInstanceExtraSpecsFilter(),
        host(aggs=[{"ssd": "true"}]),
        req(extra={"ssd": "true"}),
        None,
    ),
    "aies-other-scope": (AggregateInstanceExtraSpecsFilter(), host(), req(extra={"hw:cpu_policy": "dedicated"}), None),
    "aies-operator-any-aggregate": (
        AggregateInstanceExtraSpecsFilter(),
        host(aggs=[{"gen": "2"}, {"gen": "1,4"}]),
        req(extra={"aggregate_instance_extra_specs:gen": ">= 3"}),
        None,
    ),
    # AggregateMultiTenancyIsolation
    "tenant-no-aggs": (AggregateMultiTenancyIsolation(), host(), req(project="p9"), None),
    "tenant-ok": (AggregateMultiTenancyIsolation(), host(aggs=[{"filter_tenant_id": "a, p1"}]), req(), None),
    "tenant-bad": (
        AggregateMultiTenancyIsolation(),
        host(aggs=[{"filter_tenant_id": "b,a"}]),
        req(project="c"),
        "aggregate allows only projects a, b",
    ),
    "tenant-suffixed-key": (
        AggregateMultiTenancyIsolation(),
        host(aggs=[{"filter_tenant_id": "a"}, {"filter_tenant_id_2": "p1"}]),
        req(),
        None,
    ),
    "tenant-other-meta": (AggregateMultiTenancyIsolation(), host(aggs=[{"ssd": "true"}]), req(project="c"), None),
    # ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter
    "aff-no-group": (ServerGroupAffinityFilter(), host(), req(), None),
    "aff-first-member": (ServerGroupAffinityFilter(), host(), req(group=(AFF, {}, 0)), None),
    "aff-same-host": (ServerGroupAffinityFilter(), host("h2"), req(group=(AFF, {"m1": "h2"}, 0)), None),
    "aff-other-host": (
        ServerGroupAffinityFilter(),
        host("h1"),
        req(group=(AFF, {"m1": "h2"}, 0)),
        "affinity group web has its members on h2",
    ),
    "aff-ignores-anti": (ServerGroupAffinityFilter(), host("h1"), req(group=(ANTI, {"m1": "h2"}, 0)), None),
    "anti-empty-host": (ServerGroupAntiAffinityFilter(), host("h2"), req(group=(ANTI, {"m1": "h1"}, 0)), None),
    "anti-taken": (
        ServerGroupAntiAffinityFilter(),
        host("h1"),
        req(group=(ANTI, {"m1": "h1"}, 0)),
        "anti-affinity group web already has 1 member here (max 1)",
    ),
    "anti-max-2-ok": (ServerGroupAntiAffinityFilter(), host("h1"), req(group=(ANTI, {"m1": "h1"}, 2)), None),
    "anti-max-2-full": (
        ServerGroupAntiAffinityFilter(),
        host("h1"),
        req(group=(ANTI, {"m1": "h1", "m2": "h1", "m3": "h2"}, 2)),
        "already has 2 members here (max 2)",
    ),
    "anti-resize-same-host": (
        ServerGroupAntiAffinityFilter(),
        host("h1", instances={"i-new": "f1"}),
        req(group=(ANTI, {"m1": "h1"}, 0)),
        None,
    ),
    "anti-ignores-aff": (ServerGroupAntiAffinityFilter(), host("h1"), req(group=(AFF, {"m1": "h1"}, 0)), None),
    # SameHostFilter / DifferentHostFilter
    "same-no-hint": (SameHostFilter(), host(), req(), None),
    "same-ok": (SameHostFilter(), host(instances={"x": "f"}), req(hints={"same_host": "y, x"}), None),
    "same-bad": (
        SameHostFilter(),
        host(instances={"z": "f"}),
        req(hints={"same_host": "x,y"}),
        "holds none of the servers in same_host (x, y)",
    ),
    "different-no-hint": (DifferentHostFilter(), host(instances={"x": "f"}), req(), None),
    "different-ok": (DifferentHostFilter(), host(instances={"z": "f"}), req(hints={"different_host": "x"}), None),
    "different-bad": (
        DifferentHostFilter(),
        host(instances={"x": "f", "y": "f"}),
        req(hints={"different_host": "y,x,w"}),
        "holds x, y, named in different_host",
    ),
}


@pytest.mark.parametrize(("filt", "host_state", "request_", "expected"), CASES.values(), ids=CASES.keys())
def test_filter(filt: Filter, host_state: HostState, request_: SchedulingRequest, expected: str | None) -> None:
    reason = filt.host_passes(host_state, request_)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason
        # A refusing filter must be relevant to the request, or the engine would skip it.
        assert filt.is_relevant(request_)


PLAIN = req()
RELEVANCE: dict[str, tuple[Filter, SchedulingRequest, bool]] = {
    "all-hosts": (AllHostsFilter(), PLAIN, False),
    "num-instances": (NumInstancesFilter(), PLAIN, True),
    "io-ops": (IoOpsFilter(), PLAIN, True),
    "cc-plain": (ComputeCapabilitiesFilter(), PLAIN, False),
    "cc-other-scope": (ComputeCapabilitiesFilter(), req(extra={"hw:cpu_policy": "x"}), False),
    "cc-scoped": (ComputeCapabilitiesFilter(), req(extra={"capabilities:x": "1"}), True),
    "cc-unscoped": (ComputeCapabilitiesFilter(), req(extra={"x": "1"}), True),
    "img-plain": (ImagePropertiesFilter(), req(image={"os_distro": "x"}), False),
    "img-arch": (ImagePropertiesFilter(), req(image={"architecture": "x86_64"}), True),
    "iso-unconfigured": (IsolatedHostsFilter(), PLAIN, False),
    "iso-loose-no-images": (IsolatedHostsFilter(["h"], restrict=False), PLAIN, False),
    "iso-configured": (ISO, PLAIN, True),
    "json-plain": (JsonFilter(), PLAIN, False),
    "json-blank": (JsonFilter(), req(hints={"query": " "}), False),
    "json-query": (JsonFilter(), q(QUERY), True),
    "trusted-plain": (TrustedFilter(), PLAIN, False),
    "type-affinity": (TypeAffinityFilter(), PLAIN, True),
    "type-affinity-no-flavor": (TypeAffinityFilter(), req(flavor=("", "")), False),
    "aies-plain": (AggregateInstanceExtraSpecsFilter(), PLAIN, False),
    "aies-other-scope": (AggregateInstanceExtraSpecsFilter(), req(extra={"capabilities:x": "1"}), False),
    "aies-scoped": (AggregateInstanceExtraSpecsFilter(), req(extra={"aggregate_instance_extra_specs:x": "1"}), True),
    "aff-plain": (ServerGroupAffinityFilter(), PLAIN, False),
    "aff-unplaced": (ServerGroupAffinityFilter(), req(group=(AFF, {}, 0)), False),
    "aff-placed": (ServerGroupAffinityFilter(), req(group=(AFF, {"m": "h"}, 0)), True),
    "anti-plain": (ServerGroupAntiAffinityFilter(), PLAIN, False),
    "anti-other-policy": (ServerGroupAntiAffinityFilter(), req(group=(AFF, {"m": "h"}, 0)), False),
    "anti-placed": (ServerGroupAntiAffinityFilter(), req(group=(ANTI, {"m": "h"}, 0)), True),
    "same-plain": (SameHostFilter(), PLAIN, False),
    "same-hint": (SameHostFilter(), req(hints={"same_host": "x"}), True),
    "different-plain": (DifferentHostFilter(), PLAIN, False),
    "different-hint": (DifferentHostFilter(), req(hints={"different_host": "x"}), True),
}


@pytest.mark.parametrize(("filt", "request_", "expected"), RELEVANCE.values(), ids=RELEVANCE.keys())
def test_is_relevant(filt: Filter, request_: SchedulingRequest, expected: bool) -> None:
    assert filt.is_relevant(request_) is expected


NOVA_NAMES = [
    "AggregateInstanceExtraSpecsFilter",
    "AggregateIoOpsFilter",
    "AggregateMultiTenancyIsolation",
    "AggregateNumInstancesFilter",
    "AggregateTypeAffinityFilter",
    "AllHostsFilter",
    "ComputeCapabilitiesFilter",
    "DifferentHostFilter",
    "ImagePropertiesFilter",
    "IoOpsFilter",
    "IsolatedHostsFilter",
    "JsonFilter",
    "NumInstancesFilter",
    "SameHostFilter",
    "ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter",
    "TrustedFilter",
    "TypeAffinityFilter",
]


def test_registry_has_every_policy_filter_under_its_nova_name() -> None:
    built = build_filters(NOVA_NAMES, {})
    assert [f.name for f in built] == NOVA_NAMES
    assert set(NOVA_NAMES) <= set(FILTERS)
    (alias,) = build_filters(["AggregateMultiTenancyIsolationFilter"])
    assert isinstance(alias, AggregateMultiTenancyIsolation)


def test_build_filters_passes_the_options() -> None:
    options = {
        "max_instances_per_host": 3,
        "max_io_ops_per_host": "4",
        "isolated_hosts": "a, b",
        "isolated_images": ["i"],
        "restrict_isolated_hosts_to_isolated_images": "false",
    }
    num, agg_num, io, iso = build_filters(
        ["NumInstancesFilter", "AggregateNumInstancesFilter", "IoOpsFilter", "IsolatedHostsFilter"], options
    )
    assert isinstance(num, NumInstancesFilter) and num.max_instances == 3
    assert isinstance(agg_num, AggregateNumInstancesFilter) and agg_num.max_instances == 3
    assert isinstance(io, IoOpsFilter) and io.max_io_ops == 4
    assert isinstance(iso, IsolatedHostsFilter)
    assert (iso.hosts, iso.images, iso.restrict) == (frozenset({"a", "b"}), frozenset({"i"}), False)


def test_default_options() -> None:
    num, io, iso = build_filters(["NumInstancesFilter", "IoOpsFilter", "IsolatedHostsFilter"])
    assert isinstance(num, NumInstancesFilter) and num.max_instances == 50
    assert isinstance(io, IoOpsFilter) and io.max_io_ops == 8
    assert isinstance(iso, IsolatedHostsFilter) and iso.restrict is True


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("NumInstancesFilter", {"max_instances_per_host": "many"}, "max_instances_per_host must be an integer"),
        ("NumInstancesFilter", {"max_instances_per_host": 0}, "max_instances_per_host must be at least 1"),
        ("AggregateIoOpsFilter", {"max_io_ops_per_host": 2.5}, "max_io_ops_per_host must be an integer"),
        ("IoOpsFilter", {"max_io_ops_per_host": True}, "must be an integer"),
        ("IsolatedHostsFilter", {"isolated_hosts": [1]}, "isolated_hosts must be a list of strings"),
        (
            "IsolatedHostsFilter",
            {"restrict_isolated_hosts_to_isolated_images": "perhaps"},
            "restrict_isolated_hosts_to_isolated_images must be true or false",
        ),
    ],
)
def test_bad_options_refuse_to_build(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_filters([name], options)


def test_explain_sums_up_the_refused_hosts() -> None:
    refused_num = [(host(f"h{i}", instances={str(j): "f" for j in range(2 + i)}), "") for i in range(3)]
    assert NumInstancesFilter(2).explain(PLAIN, refused_num) == "at least 2 instances per host (max 2)"
    refused_io = [(host("a", io_ops=9), ""), (host("b", io_ops=8), "")]
    assert IoOpsFilter().explain(PLAIN, refused_io) == "at least 8 I/O-heavy tasks running per host (max 8)"

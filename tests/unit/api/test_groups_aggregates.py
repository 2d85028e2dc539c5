"""Pure rules of server groups, aggregates, placement requests and faults."""

from __future__ import annotations

import pytest

from services.api.admin import aggregates as agg
from services.api.admin.placement import validate_explain
from services.api.flows.base import set_fault
from services.api.flows.build import build_failure
from services.api.flows.request_spec import request_spec
from services.api.server_groups.manager import validate as validate_group
from services.api.servers.manager import validate_create
from services.api.validation import Violations
from services.api.zones import host_zones
from services.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, StratusError
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, flavors_pb2, images_pb2, placement_pb2, servergroups_pb2, servers_pb2

P = servergroups_pb2.ServerGroupPolicy
Rules = servergroups_pb2.ServerGroupRules


def group_violations(group: servergroups_pb2.ServerGroup, has_group: bool = True) -> set[str]:
    try:
        validate_group(group, has_group)
    except InvalidArgument as err:
        return {field for field, _ in err.violations}
    return set()


@pytest.mark.parametrize(
    ("group", "bad"),
    [
        (servergroups_pb2.ServerGroup(name="g", policy=P.SERVER_GROUP_POLICY_AFFINITY), set()),
        (servergroups_pb2.ServerGroup(name="g", policy=P.SERVER_GROUP_POLICY_SOFT_ANTI_AFFINITY), set()),
        (
            servergroups_pb2.ServerGroup(
                name="g", policy=P.SERVER_GROUP_POLICY_ANTI_AFFINITY, rules=Rules(max_server_per_host=2)
            ),
            set(),
        ),
        (servergroups_pb2.ServerGroup(name="", policy=P.SERVER_GROUP_POLICY_AFFINITY), {"server_group.name"}),
        (servergroups_pb2.ServerGroup(name="g"), {"server_group.policy"}),
        (servergroups_pb2.ServerGroup(name="g", policy=99), {"server_group.policy"}),  # type: ignore[arg-type]
        (
            servergroups_pb2.ServerGroup(
                name="g", policy=P.SERVER_GROUP_POLICY_AFFINITY, rules=Rules(max_server_per_host=2)
            ),
            {"server_group.rules"},
        ),
        (
            servergroups_pb2.ServerGroup(
                name="g", policy=P.SERVER_GROUP_POLICY_ANTI_AFFINITY, rules=Rules(max_server_per_host=0)
            ),
            {"server_group.rules.max_server_per_host"},
        ),
    ],
)
def test_server_group_validation(group: servergroups_pb2.ServerGroup, bad: set[str]) -> None:
    assert group_violations(group) == bad


def test_server_group_is_required() -> None:
    assert "server_group" in group_violations(servergroups_pb2.ServerGroup(), has_group=False)


def test_create_server_checks_group_id_and_zone_shape() -> None:
    server = servers_pb2.Server(name="s", flavor_id="f", image_id="i", server_group_id="not an id!",
                                availability_zone="z" * 300)  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        validate_create(servers_pb2.CreateServerRequest(server=server))
    assert {f for f, _ in info.value.violations} == {"server.server_group_id", "server.availability_zone"}


def test_explain_needs_flavor_and_image_but_no_name() -> None:
    ok = placement_pb2.ExplainPlacementRequest(server=servers_pb2.Server(flavor_id="f", image_id="i"))
    validate_explain(ok)
    with pytest.raises(InvalidArgument) as info:
        validate_explain(placement_pb2.ExplainPlacementRequest(project_id="bad project"))
    assert {f for f, _ in info.value.violations} == {"server", "server.flavor_id", "server.image_id", "project_id"}


def aggregate_violations(aggregate: aggregates_pb2.Aggregate) -> set[str]:
    try:
        agg.validate_create(aggregate, True)
    except InvalidArgument as err:
        return {field for field, _ in err.violations}
    return set()


@pytest.mark.parametrize(
    ("aggregate", "bad"),
    [
        (aggregates_pb2.Aggregate(name="a", availability_zone="az1"), set()),
        (aggregates_pb2.Aggregate(name="a", metadata={"ram_weight_multiplier": "2.0"}), set()),
        (aggregates_pb2.Aggregate(name=""), {"aggregate.name"}),
        (aggregates_pb2.Aggregate(name="a", availability_zone="a:b"), {"aggregate.availability_zone"}),
        (
            aggregates_pb2.Aggregate(name="a", availability_zone="x", metadata={"availability_zone": "y"}),
            {"aggregate.availability_zone"},
        ),
        (aggregates_pb2.Aggregate(name="a", metadata={"bad/key": "v"}), {"aggregate.metadata['bad/key']"}),
        (aggregates_pb2.Aggregate(name="a", metadata={"k": "v" * 256}), {"aggregate.metadata['k']"}),
        (aggregates_pb2.Aggregate(name="a", hosts=["h1"]), {"aggregate.hosts"}),
    ],
)
def test_aggregate_validation(aggregate: aggregates_pb2.Aggregate, bad: set[str]) -> None:
    assert aggregate_violations(aggregate) == bad


def test_metadata_validation_names_the_zone_key() -> None:
    v = Violations()
    agg.validate_metadata({"availability_zone": "a:b", "": "x"}, "metadata", v)
    assert {f for f, _ in v.items} == {"metadata['availability_zone']", "metadata['']"}


def test_apply_metadata_removes_empty_values_and_mirrors_the_zone() -> None:
    aggregate = aggregates_pb2.Aggregate(name="a", metadata={"keep": "1", "drop": "2"})
    agg.apply_metadata(aggregate, {"drop": "", "availability_zone": "az1"})
    assert dict(aggregate.metadata) == {"keep": "1", "availability_zone": "az1"}
    assert aggregate.availability_zone == "az1"
    agg.apply_metadata(aggregate, {"availability_zone": ""})
    assert aggregate.availability_zone == "" and "availability_zone" not in aggregate.metadata


def aggregate(agg_id: str, zone: str, *hosts: str) -> aggregates_pb2.Aggregate:
    metadata = {"availability_zone": zone} if zone else {}
    return aggregates_pb2.Aggregate(id=agg_id, name=agg_id, metadata=metadata, availability_zone=zone, hosts=hosts)


def test_host_zones_take_the_first_aggregate_by_id_with_a_zone() -> None:
    zones = host_zones([aggregate("b", "az2", "h1", "h2"), aggregate("a", "", "h1"), aggregate("c", "az3", "h1")])
    assert zones == {"h1": "az2", "h2": "az2"}


def test_a_host_may_be_in_one_zone_only() -> None:
    target = aggregate("a", "az1", "h1", "h2")
    same_zone, other_zone, no_zone = aggregate("b", "az1", "h1"), aggregate("c", "az2", "h2"), aggregate("d", "", "h1")
    assert agg.zone_conflicts(target, [same_zone, no_zone]) == []
    assert agg.zone_conflicts(aggregate("a", "", "h2"), [other_zone]) == []
    conflicts = agg.zone_conflicts(target, [same_zone, other_zone])
    assert len(conflicts) == 1 and "h2" in conflicts[0] and "az2" in conflicts[0]
    with pytest.raises(FailedPrecondition) as info:
        agg.check_zones(target, [other_zone])
    assert info.value.reason == "AVAILABILITY_ZONE_CONFLICT"


def test_request_spec_carries_flavor_image_and_group() -> None:
    server = servers_pb2.Server(
        id="i1", project_id="p", flavor_id="f1", image_id="img", availability_zone="az1", server_group_id="g",
        scheduler_hints={"same_host": "x"}, resources=servers_pb2.ServerResources(vcpus=2, ram_mb=512, disk_gb=5),
    )  # fmt: skip
    flavor = flavors_pb2.Flavor(id="f1", name="m1.x", extra_specs={"capabilities:arch": "x86_64"})
    image = images_pb2.Image(id="img", properties={"architecture": "x86_64"})
    spec = request_spec(server, flavor, image, ["compute-9"])
    assert (spec.flavor_id, spec.flavor_name, spec.image_id) == ("f1", "m1.x", "img")
    assert dict(spec.flavor_extra_specs) == {"capabilities:arch": "x86_64"}
    assert dict(spec.image_properties) == {"architecture": "x86_64"}
    assert (spec.availability_zone, spec.server_group_id, list(spec.ignore_hosts)) == ("az1", "g", ["compute-9"])
    assert spec.resources.ram_mb == 512 and dict(spec.scheduler_hints) == {"same_host": "x"}
    gone = request_spec(server, None, None)
    assert (gone.flavor_name, dict(gone.flavor_extra_specs), gone.flavor_id) == ("", {}, "f1")
    assert gone.resources.vcpus == 2


def test_faults_carry_the_refusal_metadata() -> None:
    record = state_pb2.InstanceRecord(server=servers_pb2.Server(id="i1"))
    refusal = ResourceExhausted("no valid host", metadata={"filter": "RamFilter", "resource": "ram_mb"})
    set_fault(record, refusal, "RESOURCE_EXHAUSTED")
    fault = record.server.fault
    assert (fault.code, fault.reason) == ("RESOURCE_EXHAUSTED", "NO_VALID_HOST")
    assert dict(fault.metadata) == {"filter": "RamFilter", "resource": "ram_mb"}
    failed = build_failure(["c1", "c2"], StratusError("boom", reason="SPAWN_FAILED"))
    assert failed.reason == "BUILD_FAILED" and "c1, c2" in failed.message
    assert failed.metadata == {"hosts_tried": "c1,c2", "attempts": "2", "last_reason": "SPAWN_FAILED"}

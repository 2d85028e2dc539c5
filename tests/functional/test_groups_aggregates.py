"""Server groups and aggregates through the public API, on the session stack (2 hosts of 8 vCPU,
8192 MB, 100 GB)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from stratus.v1 import aggregates_pb2, hosts_pb2, servergroups_pb2, servers_pb2
from tests.support.stack import Stack

P = servergroups_pb2.ServerGroupPolicy
COMPUTES = {"compute-1", "compute-2"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_server(stack: Stack, name: str, who: str = "admin", **fields: str) -> servers_pb2.Server:
    server = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", **fields)  # type: ignore[arg-type]
    created: servers_pb2.Server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=server),
                                                             metadata=stack.md(who))  # fmt: skip
    return created


def delete_servers(stack: Stack, servers: list[servers_pb2.Server], who: str = "admin") -> None:
    for server in servers:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md(who))
    for server in servers:
        stack.wait_gone(server.id)


def new_group(stack: Stack, policy: int, who: str = "admin") -> servergroups_pb2.ServerGroup:
    group = servergroups_pb2.ServerGroup(name=unique("g"), policy=policy)  # type: ignore[arg-type]
    created: servergroups_pb2.ServerGroup = stack.server_groups.CreateServerGroup(
        servergroups_pb2.CreateServerGroupRequest(server_group=group), metadata=stack.md(who)
    )
    return created


def get_group(stack: Stack, group_id: str, who: str = "admin") -> servergroups_pb2.ServerGroup:
    group: servergroups_pb2.ServerGroup = stack.server_groups.GetServerGroup(
        servergroups_pb2.GetServerGroupRequest(id=group_id), metadata=stack.md(who)
    )
    return group


def rpc_fails(call: object, code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    assert info.value.code() == code, info.value.details()
    return info.value


def test_anti_affinity_puts_members_apart_and_refuses_a_third(stack: Stack) -> None:
    group = new_group(stack, P.SERVER_GROUP_POLICY_ANTI_AFFINITY)
    made = [create_server(stack, f"anti-{i}", server_group_id=group.id) for i in range(3)]
    try:
        assert sorted(get_group(stack, group.id).members) == sorted(s.id for s in made)
        final = [stack.wait_for_server(s.id, {"ACTIVE", "ERROR"}) for s in made]
        active = [s for s in final if s.status == servers_pb2.SERVER_STATUS_ACTIVE]
        failed = [s for s in final if s.status == servers_pb2.SERVER_STATUS_ERROR]
        assert len(active) == 2 and {s.host for s in active} == COMPUTES
        assert len(failed) == 1
        fault = failed[0].fault
        assert fault.reason == "NO_VALID_HOST", fault
        assert "ServerGroupAntiAffinityFilter" in fault.message, fault
        assert fault.metadata.get("filter") == "ServerGroupAntiAffinityFilter", fault
        rpc_fails(lambda: stack.server_groups.DeleteServerGroup(
            servergroups_pb2.DeleteServerGroupRequest(id=group.id), metadata=stack.md()),
            grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    finally:
        delete_servers(stack, made)
    assert not get_group(stack, group.id).members
    stack.server_groups.DeleteServerGroup(servergroups_pb2.DeleteServerGroupRequest(id=group.id), metadata=stack.md())
    rpc_fails(lambda: get_group(stack, group.id), grpc.StatusCode.NOT_FOUND)


def test_affinity_puts_members_together(stack: Stack) -> None:
    group = new_group(stack, P.SERVER_GROUP_POLICY_AFFINITY, who="demo")
    made = [create_server(stack, f"aff-{i}", who="demo", server_group_id=group.id) for i in range(3)]
    try:
        final = [stack.wait_for_server(s.id, {"ACTIVE", "ERROR"}, who="demo") for s in made]
        assert [servers_pb2.ServerStatus.Name(s.status) for s in final] == ["SERVER_STATUS_ACTIVE"] * 3
        assert len({s.host for s in final}) == 1
    finally:
        delete_servers(stack, made, who="demo")
    stack.server_groups.DeleteServerGroup(servergroups_pb2.DeleteServerGroupRequest(id=group.id),
                                          metadata=stack.md("demo"))  # fmt: skip


def test_groups_belong_to_their_project(stack: Stack) -> None:
    group = new_group(stack, P.SERVER_GROUP_POLICY_SOFT_ANTI_AFFINITY, who="demo")
    rpc_fails(lambda: create_server(stack, "theirs", server_group_id=group.id), grpc.StatusCode.NOT_FOUND)
    rpc_fails(lambda: create_server(stack, "nowhere", server_group_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND)
    mine = stack.server_groups.ListServerGroups(servergroups_pb2.ListServerGroupsRequest(), metadata=stack.md("demo"))
    assert group.id in {g.id for g in mine.server_groups}
    rpc_fails(lambda: stack.server_groups.ListServerGroups(servergroups_pb2.ListServerGroupsRequest(all_projects=True),
                                                           metadata=stack.md("demo")),
              grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip
    bad = servergroups_pb2.ServerGroup(name="x", policy=P.SERVER_GROUP_POLICY_AFFINITY,
                                       rules=servergroups_pb2.ServerGroupRules(max_server_per_host=2))  # fmt: skip
    rpc_fails(lambda: stack.server_groups.CreateServerGroup(servergroups_pb2.CreateServerGroupRequest(server_group=bad),
                                                            metadata=stack.md("demo")),
              grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    stack.server_groups.DeleteServerGroup(servergroups_pb2.DeleteServerGroupRequest(id=group.id),
                                          metadata=stack.md("demo"))  # fmt: skip


def new_aggregate(stack: Stack, name: str, zone: str = "") -> aggregates_pb2.Aggregate:
    request = aggregates_pb2.CreateAggregateRequest(
        aggregate=aggregates_pb2.Aggregate(name=name, availability_zone=zone)
    )
    created: aggregates_pb2.Aggregate = stack.aggregates.CreateAggregate(request, metadata=stack.md())
    return created


def add_host(stack: Stack, aggregate_id: str, host: str) -> None:
    request = aggregates_pb2.AddAggregateHostRequest(id=aggregate_id, host=host)
    stack.aggregates.AddAggregateHost(request, metadata=stack.md())


def delete_aggregate(stack: Stack, aggregate_id: str) -> None:
    stack.aggregates.DeleteAggregate(aggregates_pb2.DeleteAggregateRequest(id=aggregate_id), metadata=stack.md())


@contextmanager
def zone_aggregate(stack: Stack, zone: str, host: str) -> Iterator[aggregates_pb2.Aggregate]:
    aggregate = new_aggregate(stack, unique("agg"), zone)
    try:
        add_host(stack, aggregate.id, host)
        try:
            yield stack.aggregates.GetAggregate(
                aggregates_pb2.GetAggregateRequest(id=aggregate.id), metadata=stack.md()
            )
        finally:
            request = aggregates_pb2.RemoveAggregateHostRequest(id=aggregate.id, host=host)
            stack.aggregates.RemoveAggregateHost(request, metadata=stack.md())
    finally:
        delete_aggregate(stack, aggregate.id)


def test_a_zone_from_an_aggregate_steers_placement(stack: Stack) -> None:
    rpc_fails(lambda: create_server(stack, "no-zone", availability_zone="az-x"), grpc.StatusCode.INVALID_ARGUMENT)
    with zone_aggregate(stack, "az-x", "compute-1") as aggregate:
        assert list(aggregate.hosts) == ["compute-1"] and aggregate.metadata["availability_zone"] == "az-x"
        host = stack.hosts.GetHost(hosts_pb2.GetHostRequest(host="compute-1"), metadata=stack.md())
        assert host.availability_zone == "az-x"
        made = [create_server(stack, f"zoned-{i}", availability_zone="az-x") for i in range(2)]
        try:
            for server in made:
                assert stack.wait_for_server(server.id, {"ACTIVE", "ERROR"}).host == "compute-1"
        finally:
            delete_servers(stack, made)
    host = stack.hosts.GetHost(hosts_pb2.GetHostRequest(host="compute-1"), metadata=stack.md())
    assert host.availability_zone != "az-x"


def test_aggregate_rules(stack: Stack) -> None:
    with zone_aggregate(stack, "az-y", "compute-2") as zoned:
        rpc_fails(lambda: new_aggregate(stack, zoned.name), grpc.StatusCode.ALREADY_EXISTS)
        other = new_aggregate(stack, unique("agg"), zone="az-z")
        try:
            rpc_fails(lambda: add_host(stack, other.id, "compute-2"), grpc.StatusCode.FAILED_PRECONDITION)
            rpc_fails(lambda: add_host(stack, other.id, "no-such-host"), grpc.StatusCode.NOT_FOUND)
            rpc_fails(lambda: delete_aggregate(stack, zoned.id), grpc.StatusCode.FAILED_PRECONDITION)
            request = aggregates_pb2.SetAggregateMetadataRequest(
                id=other.id, metadata={"availability_zone": "", "ssd": "true"}
            )
            changed = stack.aggregates.SetAggregateMetadata(request, metadata=stack.md())
            assert changed.availability_zone == "" and dict(changed.metadata) == {"ssd": "true"}
        finally:
            delete_aggregate(stack, other.id)


def test_members_cannot_touch_aggregates(stack: Stack) -> None:
    demo = stack.md("demo")
    rpc_fails(lambda: stack.aggregates.ListAggregates(aggregates_pb2.ListAggregatesRequest(), metadata=demo),
              grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip
    create = aggregates_pb2.CreateAggregateRequest(aggregate=aggregates_pb2.Aggregate(name=unique("agg")))
    rpc_fails(lambda: stack.aggregates.CreateAggregate(create, metadata=demo), grpc.StatusCode.PERMISSION_DENIED)

"""ExplainPlacement through the public API: the same answer a create would get, nothing claimed."""

from __future__ import annotations

import uuid

import grpc
import pytest

from stratus.v1 import flavors_pb2, hosts_pb2, placement_pb2, servers_pb2
from tests.support.stack import Stack


def usage(stack: Stack) -> dict[str, tuple[int, int, int, int]]:
    hosts = stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts
    return {h.host: (h.vcpus_used, h.ram_mb_used, h.disk_gb_used, h.running_servers) for h in hosts}


def explain(stack: Stack, flavor: str, who: str = "admin", **fields: str) -> placement_pb2.PlacementExplanation:
    server = servers_pb2.Server(flavor_id=flavor, image_id="tiny", **fields)  # type: ignore[arg-type]
    reply: placement_pb2.PlacementExplanation = stack.placement.ExplainPlacement(
        placement_pb2.ExplainPlacementRequest(server=server), metadata=stack.md(who)
    )
    return reply


def test_a_flavor_too_big_is_explained_by_ram_and_claims_nothing(stack: Stack) -> None:
    big = flavors_pb2.Flavor(name=f"explain-{uuid.uuid4().hex[:6]}", vcpus=1, ram_mb=16384, disk_gb=1)
    flavor = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=big), metadata=stack.md())
    try:
        before = usage(stack)
        reply = explain(stack, flavor.id)
        assert reply.selected_host == "" and reply.message
        assert "RamFilter" in reply.message
        ram = {f.filter: f for f in reply.filters}["RamFilter"]
        assert ram.hosts_out == ram.hosts_in == 2, reply
        assert ram.examples or ram.summary
        assert not reply.hosts
        assert usage(stack) == before
    finally:
        stack.flavors.DeleteFlavor(flavors_pb2.DeleteFlavorRequest(id=flavor.id), metadata=stack.md())


def test_a_flavor_that_fits_gets_a_ranking_and_claims_nothing(stack: Stack) -> None:
    before = usage(stack)
    reply = explain(stack, "m1.tiny")
    assert reply.selected_host in {"compute-1", "compute-2"}, reply
    assert reply.hosts and reply.hosts[0].host == reply.selected_host
    assert all(f.hosts_out == 0 for f in reply.filters), reply
    assert usage(stack) == before


def test_explain_validates_as_create_does_and_is_admin_only(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as info:
        explain(stack, "")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        explain(stack, "m1.tiny", availability_zone="az-none")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        explain(stack, "no-such-flavor")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        explain(stack, "m1.tiny", who="demo")
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

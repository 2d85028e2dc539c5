"""Server groups, aggregates and group membership of servers against a real etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from services.api.admin.aggregates import AggregatesManager
from services.api.flavors.manager import FlavorsManager
from services.api.flows.base import Limits
from services.api.flows.orchestrator import Orchestrator
from services.api.flows.request_spec import SpecResolver
from services.api.flows.tasks import InstanceTasks
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.api.peers import Peers
from services.api.server_groups.manager import ServerGroupsManager, read
from services.api.servers.manager import ServersManager
from services.core import context, instances, keys
from services.core.context import RequestContext
from services.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, flavors_pb2, servergroups_pb2, servers_pb2
from tests.support.local_flows import LocalFlows

P = servergroups_pb2.ServerGroupPolicy
ALICE = RequestContext("alice", "alice", frozenset({"member"}))
BOB = RequestContext("bob", "bob", frozenset({"member"}))
ADMIN = RequestContext("admin", "admin", frozenset({"admin"}))


@pytest.fixture
def as_user() -> Any:
    """Binds the caller; each async test runs in a task of its own, so the binding ends with it."""

    def bind(ctx: RequestContext) -> None:
        context.bind(ctx)

    return bind


class NoFlows:
    """Stands in for the orchestrator: the tests look at records, not builds."""

    limits = Limits()

    async def build(self, instance_id: str) -> None:
        return None


@dataclass
class Api:
    store: Store
    groups: ServerGroupsManager
    servers: ServersManager
    specs: SpecResolver
    flavors: FlavorsManager
    tasks: InstanceTasks


@pytest.fixture
async def api(store: Store, tmp_path: Path) -> AsyncIterator[Api]:
    flavors = FlavorsManager(store)
    images = ImagesManager(store, ImageFiles(tmp_path / "images"))
    await flavors.seed()
    with context.bound(context.SYSTEM):  # the stack seeds, as the api does at start-up
        await images.seed()
    groups = ServerGroupsManager(store)
    specs = SpecResolver(store, flavors, images, groups)
    tasks = InstanceTasks()
    servers = ServersManager(store, specs, groups, cast(Orchestrator, NoFlows()), LocalFlows(store, tasks))
    yield Api(store, groups, servers, specs, flavors, tasks)
    await tasks.drain(5)


def group_of(policy: int = P.SERVER_GROUP_POLICY_ANTI_AFFINITY) -> servergroups_pb2.ServerGroup:
    return servergroups_pb2.ServerGroup(name="g", policy=policy)  # type: ignore[arg-type]


def server_in(group_id: str = "", zone: str = "", name: str = "s") -> servers_pb2.CreateServerRequest:
    server = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", server_group_id=group_id,
                                availability_zone=zone)  # fmt: skip
    return servers_pb2.CreateServerRequest(server=server)


async def test_groups_are_scoped_to_their_project(api: Api, as_user: Any) -> None:
    as_user(ALICE)
    group = await api.groups.create(group_of())
    assert (group.project_id, group.rules.max_server_per_host) == ("alice", 1)
    assert (await api.groups.get(group.id)).name == "g"
    as_user(BOB)
    with pytest.raises(NotFound):
        await api.groups.get(group.id)
    assert not (await api.groups.list(servergroups_pb2.ListServerGroupsRequest())).server_groups
    with pytest.raises(PermissionDenied):
        await api.groups.list(servergroups_pb2.ListServerGroupsRequest(all_projects=True))
    with pytest.raises(NotFound):
        await api.servers.create(server_in(group.id))
    as_user(ADMIN)
    every = await api.groups.list(servergroups_pb2.ListServerGroupsRequest(all_projects=True))
    assert [g.id for g in every.server_groups] == [group.id]


async def test_list_pages(api: Api, as_user: Any) -> None:
    as_user(ALICE)
    made = [(await api.groups.create(group_of())).id for _ in range(3)]
    seen: list[str] = []
    token = ""
    while True:
        reply = await api.groups.list(servergroups_pb2.ListServerGroupsRequest(page_size=2, page_token=token))
        seen += [g.id for g in reply.server_groups]
        token = reply.next_page_token
        if not token:
            break
    assert seen == sorted(made)


async def test_members_join_with_the_instance_and_block_deletion(api: Api, as_user: Any) -> None:
    as_user(ALICE)
    group = await api.groups.create(group_of())
    created = await asyncio.gather(*(api.servers.create(server_in(group.id, name=f"s{i}")) for i in range(5)))
    record, _ = await read(api.store, group.id)
    assert sorted(record.group.members) == sorted(s.id for s in created)
    assert all(s.server_group_id == group.id for s in created)
    with pytest.raises(FailedPrecondition) as info:
        await api.groups.delete(group.id)
    assert info.value.reason == "GROUP_NOT_EMPTY"
    flows = Orchestrator(api.store, cast(Peers, None), api.specs, api.specs._images, Limits(3))
    record.placements[created[0].id] = "compute-1"
    await api.store.put(keys.server_group(group.id), record.SerializeToString())
    for server in created:
        await flows.delete(server.id)
    record, _ = await read(api.store, group.id)
    assert not record.group.members and not record.placements
    await api.groups.delete(group.id)
    with pytest.raises(NotFound):
        await api.groups.get(group.id)


async def test_zone_must_be_known(api: Api, as_user: Any) -> None:
    as_user(ALICE)
    caps = state_pb2.HostCapabilities(host="c1", availability_zone="nova")
    await api.store.put(keys.host_capabilities("c1"), caps.SerializeToString())
    with pytest.raises(InvalidArgument) as info:
        await api.servers.create(server_in(zone="az-nowhere"))
    assert info.value.violations[0][0] == "server.availability_zone"
    assert (await api.servers.create(server_in(zone="nova"))).availability_zone == "nova"
    as_user(ADMIN)
    aggregates = AggregatesManager(api.store)
    await aggregates.create(aggregates_pb2.Aggregate(name="a", availability_zone="az-x"))
    as_user(ALICE)
    assert (await api.servers.create(server_in(zone="az-x"))).availability_zone == "az-x"


async def test_spec_at_schedule_time_survives_a_deleted_flavor(api: Api, as_user: Any) -> None:
    as_user(ADMIN)
    flavor = await api.flavors.create(flavors_pb2.Flavor(name="spec", vcpus=1, ram_mb=64, extra_specs={"k": "v"}))
    request = server_in()
    request.server.flavor_id = flavor.id
    server = await api.servers.create(request)
    record, _ = await instances.get(api.store, server.id)
    spec = await api.specs.for_record(record)
    assert (dict(spec.flavor_extra_specs), spec.flavor_name, spec.image_id) == ({"k": "v"}, "spec", server.image_id)
    assert dict(spec.image_properties)["architecture"] == "x86_64"
    await api.flavors.delete(flavor.id)
    spec = await api.specs.for_record(record)
    assert (dict(spec.flavor_extra_specs), spec.flavor_id, spec.resources.ram_mb) == ({}, flavor.id, 64)


async def known_host(store: Store, host: str) -> None:
    await store.put(keys.host_capabilities(host), state_pb2.HostCapabilities(host=host).SerializeToString())


async def test_aggregate_lifecycle(store: Store) -> None:
    m = AggregatesManager(store)
    await known_host(store, "c1")
    a = await m.create(aggregates_pb2.Aggregate(name="rack-1", availability_zone="az1"))
    assert dict(a.metadata) == {"availability_zone": "az1"}
    with pytest.raises(AlreadyExists):
        await m.create(aggregates_pb2.Aggregate(name="rack-1"))
    with pytest.raises(NotFound):
        await m.add_host(a.id, "no-such-host")
    a = await m.add_host(a.id, "c1")
    assert list(a.hosts) == ["c1"]
    with pytest.raises(AlreadyExists):
        await m.add_host(a.id, "c1")
    with pytest.raises(FailedPrecondition):
        await m.delete(a.id)
    a = await m.set_metadata(a.id, {"availability_zone": "az2", "ram_weight_multiplier": "2"})
    assert (a.availability_zone, a.metadata["ram_weight_multiplier"]) == ("az2", "2")
    a = await m.set_metadata(a.id, {"ram_weight_multiplier": ""})
    assert "ram_weight_multiplier" not in a.metadata
    a = await m.remove_host(a.id, "c1")
    with pytest.raises(NotFound):
        await m.remove_host(a.id, "c1")
    await m.delete(a.id)
    assert list((await m.list()).aggregates) == []
    await m.create(aggregates_pb2.Aggregate(name="rack-1"))  # the name is free again


async def test_a_host_cannot_join_two_zones(store: Store) -> None:
    m = AggregatesManager(store)
    await known_host(store, "c1")
    await store.put(keys.service_seen("compute", "c2"), state_pb2.ServiceSeen().SerializeToString())
    az1 = await m.create(aggregates_pb2.Aggregate(name="az1", availability_zone="az1"))
    az2 = await m.create(aggregates_pb2.Aggregate(name="az2", availability_zone="az2"))
    plain = await m.create(aggregates_pb2.Aggregate(name="ssd", metadata={"ssd": "true"}))
    await m.add_host(az1.id, "c1")
    await m.add_host(plain.id, "c1")
    with pytest.raises(FailedPrecondition) as info:
        await m.add_host(az2.id, "c1")
    assert info.value.reason == "AVAILABILITY_ZONE_CONFLICT"
    await m.add_host(az2.id, "c2")
    with pytest.raises(FailedPrecondition):
        await m.set_metadata(plain.id, {"availability_zone": "az2"})
    results = await asyncio.gather(m.add_host(az1.id, "c2"), m.add_host(plain.id, "c2"), return_exceptions=True)
    assert isinstance(results[0], FailedPrecondition) and not isinstance(results[1], BaseException)

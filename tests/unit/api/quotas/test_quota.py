"""Quotas: the charge arithmetic (pure), and the ledger, the Quotas API, server groups and images
against a real etcd, with concurrent charges of one project."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.api.flavors.manager import FlavorsManager
from services.api.flows.base import Limits
from services.api.flows.orchestrator import Orchestrator
from services.api.flows.request_spec import SpecResolver
from services.api.flows.tasks import InstanceTasks
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager, one_chunk
from services.api.quotas import counted, quota
from services.api.quotas.quota import Quotas
from services.api.quotas.sets import QuotaSetsManager
from services.api.server_groups.manager import ServerGroupsManager
from services.api.servers.manager import ServersManager
from services.core import context, keys
from services.core.context import RequestContext
from services.core.errors import InvalidArgument, PermissionDenied, QuotaExceeded, code_of, to_status
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import images_pb2, quotas_pb2, servergroups_pb2, servers_pb2
from tests.support.local_flows import LocalFlows

ALICE = RequestContext("alice", "alice", frozenset({"member"}))
BOB = RequestContext("bob", "bob", frozenset({"member"}))
ADMIN = RequestContext("admin", "admin", frozenset({"admin"}))
DEFAULTS = {**{r: 10 for r in quota.RESOURCES}, "ram_mb": 10_000}
Q = quotas_pb2.QuotaSet


# ---- pure ----------------------------------------------------------------------------------------
def test_over_checks_growth_only_and_knows_unlimited() -> None:
    limits = Q(instances=2, cores=-1, ram_mb=100)
    usage = Q(instances=2, cores=1000, ram_mb=50)
    assert quota.over(limits, usage, {"instances": 1, "cores": 64, "ram_mb": 50}) == [("instances", 2, 2, 1)]
    assert quota.over(limits, usage, {"ram_mb": 51}) == [("ram_mb", 100, 50, 51)]
    assert quota.over(limits, Q(instances=5), {"instances": -1}) == []  # above a lowered limit: a release fits


def test_limits_are_the_defaults_with_the_overrides() -> None:
    limits = quota.limits_of(DEFAULTS, Q(cores=-1, instances=0))
    assert (limits.instances, limits.cores, limits.ram_mb, limits.keypairs) == (0, -1, 10_000, 10)
    assert all(limits.HasField(r) for r in quota.RESOURCES)  # type: ignore[arg-type]


def test_applied_never_goes_below_zero() -> None:
    usage = quota.applied(Q(instances=1, cores=2), {"instances": -1, "cores": -4, "ram_mb": 3})
    assert (usage.instances, usage.cores, usage.ram_mb, usage.images) == (0, 0, 3, 0)


def test_deltas_name_project_wide_resources_only() -> None:
    assert quota.check_delta({"instances": 1, "cores": 0}) == {"instances": 1}
    for bad in ({"disks": 1}, {"server_group_members": 1}):
        with pytest.raises(ValueError):
            quota.check_delta(bad)
    assert quota.difference({"cores": 2, "ram_mb": 64}, {"cores": 4, "ram_mb": 64}) == {"cores": -2}


def test_a_resizing_server_holds_the_larger_size_of_each() -> None:
    record = state_pb2.InstanceRecord(
        server=servers_pb2.Server(resources=servers_pb2.ServerResources(vcpus=4, ram_mb=512))
    )
    assert quota.instance_charge(record) == {"instances": 1, "cores": 4, "ram_mb": 512}
    record.resize.old_resources.CopyFrom(servers_pb2.ServerResources(vcpus=2, ram_mb=2048))
    assert quota.instance_charge(record) == {"instances": 1, "cores": 4, "ram_mb": 2048}


def test_quota_exceeded_carries_a_quota_failure_naming_the_resource() -> None:
    err = QuotaExceeded("alice", [("instances", 7, 7, 1)])
    assert code_of(err) == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason == "QUOTA_EXCEEDED"
    status = status_pb2.Status.FromString(dict(to_status(err).trailing_metadata)["grpc-status-details-bin"])
    failure = error_details_pb2.QuotaFailure()
    assert any(detail.Unpack(failure) for detail in status.details)
    violation = failure.violations[0]
    assert (violation.subject, violation.quota_metric, violation.quota_value) == ("project:alice", "instances", 7)
    assert "limit 7, in use 7, requested 1" in violation.description


# ---- the ledger ----------------------------------------------------------------------------------
async def charge_one(ledger: Quotas, store: Store, i: int, delta: dict[str, int]) -> bool:
    key = f"things/{i}"
    try:
        return await ledger.commit("alice", delta, [store.cmp_absent(key)], [store.op_put(key, b"x")])
    except QuotaExceeded as exc:
        assert exc.over[0][0] == next(iter(delta))
        return False


async def test_concurrent_charges_stop_exactly_at_the_limit(store: Store) -> None:
    replicas = [Quotas(store, {**DEFAULTS, "instances": 7}) for _ in range(3)]  # three apis, one etcd
    results = await asyncio.gather(*(charge_one(replicas[i % 3], store, i, {"instances": 1}) for i in range(60)))
    assert sum(results) == 7
    things, _ = await store.read_all("things/", most=100_000)
    assert len(things) == 7 and (await replicas[0].usage("alice")).instances == 7

    async def give_back(i: int) -> None:
        kv = await store.get(f"things/{i}")
        assert kv is not None
        gone = [store.op_delete(kv.key)]
        assert await replicas[i % 3].commit("alice", {"instances": -1}, [store.cmp_mod(kv.key, kv.mod_revision)], gone)

    await asyncio.gather(*(give_back(i) for i, landed in enumerate(results) if landed))
    assert (await replicas[0].usage("alice")).instances == 0


async def test_an_amount_stops_at_its_limit(store: Store) -> None:
    ledger = Quotas(store, {**DEFAULTS, "cores": 20})
    results = await asyncio.gather(*(charge_one(ledger, store, i, {"cores": 3}) for i in range(20)))
    assert sum(results) == 6 and (await ledger.usage("alice")).cores == 18


async def test_a_failed_compare_of_the_caller_charges_nothing(store: Store) -> None:
    ledger = Quotas(store, DEFAULTS)
    await store.put("things/taken", b"x")
    assert not await ledger.commit("alice", {"keypairs": 1}, [store.cmp_absent("things/taken")], [])
    assert (await ledger.usage("alice")).keypairs == 0


async def test_a_limit_below_the_usage_blocks_new_use_only(store: Store) -> None:
    ledger = Quotas(store, DEFAULTS)
    context.bind(ADMIN)
    manager = QuotaSetsManager(store, ledger)
    assert await ledger.commit("alice", {"images": 3}, [], [])
    await manager.update(quotas_pb2.UpdateQuotaSetRequest(project_id="alice", quota_set=Q(images=1)))
    with pytest.raises(QuotaExceeded):
        await ledger.commit("alice", {"images": 1}, [], [])
    assert await ledger.commit("alice", {"images": -1}, [], [])
    reply = await manager.get("alice")
    assert (reply.limits.images, reply.usage.images, reply.limits.instances) == (1, 2, 10)


async def test_the_system_is_not_counted(store: Store) -> None:
    ledger = Quotas(store, {**DEFAULTS, "images": 0})
    assert await ledger.commit("", {"images": 1}, [], [store.op_put("things/seed", b"x")])
    assert await store.get(keys.quota_usage("")) is None


# ---- the Quotas API ------------------------------------------------------------------------------
async def test_a_project_reads_its_own_quotas_and_an_admin_any(store: Store) -> None:
    manager = QuotaSetsManager(store, Quotas(store, DEFAULTS))
    context.bind(ALICE)
    own = await manager.get("")
    assert own.project_id == "alice" and own.limits.instances == 10 and own.usage.instances == 0
    assert own.usage.HasField("keypairs")
    with pytest.raises(PermissionDenied):
        await manager.get("bob")
    with pytest.raises(PermissionDenied):
        await manager.update(quotas_pb2.UpdateQuotaSetRequest(project_id="alice", quota_set=Q(instances=99)))
    context.bind(ADMIN)
    assert (await manager.get("bob")).project_id == "bob"
    await manager.update(quotas_pb2.UpdateQuotaSetRequest(project_id="bob", quota_set=Q(instances=3)))
    updated = await manager.update(quotas_pb2.UpdateQuotaSetRequest(project_id="bob", quota_set=Q(cores=-1)))
    assert (updated.limits.instances, updated.limits.cores, updated.limits.ram_mb) == (3, -1, 10_000)


async def test_updates_are_bounded(store: Store) -> None:
    manager = QuotaSetsManager(store, Quotas(store, DEFAULTS))
    context.bind(ADMIN)
    bad = [
        quotas_pb2.UpdateQuotaSetRequest(project_id="", quota_set=Q(instances=1)),
        quotas_pb2.UpdateQuotaSetRequest(project_id="bob"),
        quotas_pb2.UpdateQuotaSetRequest(project_id="bob", quota_set=Q(instances=-2)),
        quotas_pb2.UpdateQuotaSetRequest(project_id="bob", quota_set=Q(image_bytes=2**62)),
    ]
    fields = []
    for request in bad:
        with pytest.raises(InvalidArgument) as info:
            await manager.update(request)
        fields.append(info.value.violations[0][0])
    assert fields == ["project_id", "quota_set", "quota_set.instances", "quota_set.image_bytes"]


# ---- server groups and their members, images -----------------------------------------------------
class NoFlows:
    limits = Limits()

    async def build(self, instance_id: str) -> None:
        return None


@dataclass
class Api:
    store: Store
    ledger: Quotas
    groups: ServerGroupsManager
    servers: ServersManager
    images: ImagesManager
    quota_sets: QuotaSetsManager
    tasks: InstanceTasks


@pytest.fixture
async def api(store: Store, tmp_path: Path) -> AsyncIterator[Api]:
    ledger = Quotas(store, {**DEFAULTS, "server_groups": 2, "server_group_members": 2, "images": 2,
                            "image_bytes": 1000})  # fmt: skip
    flavors = FlavorsManager(store)
    images = ImagesManager(store, ImageFiles(tmp_path / "images"), ledger)
    with context.bound(context.SYSTEM):  # the stack seeds, as the api does at start-up
        await flavors.seed()
        await images.seed()
    groups = ServerGroupsManager(store, ledger)
    specs = SpecResolver(store, flavors, images, groups)
    tasks = InstanceTasks()
    servers = ServersManager(store, specs, groups, cast(Orchestrator, NoFlows()), LocalFlows(store, tasks), ledger)
    context.bind(ALICE)
    yield Api(store, ledger, groups, servers, images, QuotaSetsManager(store, ledger), tasks)
    await tasks.drain(5)


async def test_server_groups_count_and_their_members_are_bounded(api: Api) -> None:
    group = servergroups_pb2.ServerGroup(
        name="g", policy=servergroups_pb2.ServerGroupPolicy.SERVER_GROUP_POLICY_AFFINITY
    )
    made = [await api.groups.create(group) for _ in range(2)]
    with pytest.raises(QuotaExceeded) as info:
        await api.groups.create(group)
    assert info.value.over == [("server_groups", 2, 2, 1)]
    spec = servers_pb2.Server(name="s", flavor_id="m1.tiny", image_id="tiny", server_group_id=made[0].id)

    async def create() -> str:
        try:
            return (await api.servers.create(servers_pb2.CreateServerRequest(server=spec))).id
        except QuotaExceeded as exc:
            assert exc.over[0][0] == "server_group_members"
            return ""

    created = [i for i in await asyncio.gather(*(create() for _ in range(6))) if i]
    assert len(created) == 2
    reply = await api.quota_sets.get("")
    assert (reply.usage.server_groups, reply.usage.server_group_members, reply.usage.instances) == (2, 2, 2)
    assert reply.usage.cores == 2 and reply.usage.ram_mb == 256
    for server_id in created:
        await counted.delete_instance(api.store, server_id)
    await api.groups.delete(made[1].id)
    reply = await api.quota_sets.get("")
    assert (reply.usage.server_groups, reply.usage.instances, reply.usage.cores, reply.usage.ram_mb) == (1, 0, 0, 0)


def upload(name: str, data: bytes) -> AsyncIterator[images_pb2.UploadImageRequest]:
    async def stream() -> AsyncIterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name=name, disk_format="raw"))
        async for chunk in one_chunk(data):
            yield images_pb2.UploadImageRequest(chunk=chunk)

    return stream()


async def test_images_count_and_bytes(api: Api) -> None:
    first = await api.images.upload(upload("a", b"a" * 600))
    usage = await api.ledger.usage("alice")
    assert (usage.images, usage.image_bytes) == (1, 600)
    with pytest.raises(QuotaExceeded) as info:
        await api.images.upload(upload("b", b"b" * 500))  # 1100 bytes > 1000: refused, and nothing stays
    assert info.value.over == [("image_bytes", 1000, 600, 500)]
    assert [i.name for i in (await api.images.list(0, "")).images if i.owner_project_id == "alice"] == ["a"]
    second = await api.images.upload(upload("c", b"c" * 400))
    with pytest.raises(QuotaExceeded) as more:
        await api.images.upload(upload("d", b"d"))
    assert more.value.over == [("images", 2, 2, 1)]
    await api.images.delete(first.id)
    await api.images.delete(second.id)
    usage = await api.ledger.usage("alice")
    assert (usage.images, usage.image_bytes) == (0, 0)


async def test_concurrent_twins_at_the_limit_get_the_same_server(api: Api) -> None:
    await api.store.put(keys.quota_limits("alice"), Q(instances=1).SerializeToString())
    spec = servers_pb2.Server(name="s", flavor_id="m1.tiny", image_id="tiny")
    request = servers_pb2.CreateServerRequest(server=spec, request_id="twin-1")
    made = await asyncio.gather(*(api.servers.create(request) for _ in range(5)))
    assert len({s.id for s in made}) == 1 and (await api.ledger.usage("alice")).instances == 1
    with pytest.raises(QuotaExceeded):
        await api.servers.create(servers_pb2.CreateServerRequest(server=spec, request_id="twin-2"))

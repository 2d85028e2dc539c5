"""Quotas through the resize and snapshot flows and the delete's last step, against a real etcd
(the flows' fixture: a compute that keeps the contract)."""

from __future__ import annotations

import pytest

from services.api.quotas import counted, quota
from services.api.quotas.quota import Quotas
from services.core import instances, keys
from services.core.errors import QuotaExceeded
from stratus.v1 import quotas_pb2
from tests.unit.api.flows.test_flows_store import Api, active_server, api, settled

__all__ = ["api"]  # the fixture, shared with the flows' tests


async def charged_server(api: Api) -> str:
    """An ACTIVE m1.tiny server (1 vCPU, 128 MiB) of alice, charged as a create charges it."""
    sid = await active_server(api)
    record, _ = await instances.get(api.store, sid)
    assert await Quotas(api.store).commit("alice", quota.instance_charge(record), [], [])
    return sid


async def used(api: Api) -> tuple[int, int, int]:
    usage = await Quotas(api.store).usage("alice")
    return usage.instances, usage.cores, usage.ram_mb


async def limit(api: Api, **limits: int) -> None:
    await api.store.put(keys.quota_limits("alice"), quotas_pb2.QuotaSet(**limits).SerializeToString())


async def test_a_resize_charges_the_larger_size_until_confirmed(api: Api) -> None:
    sid = await charged_server(api)
    assert await used(api) == (1, 1, 128)
    await api.servers.resize(sid, "big")  # 2 vCPUs, 2048 MiB
    assert await used(api) == (1, 2, 2048)
    await settled(api, sid)
    await api.servers.action(sid, "confirm-resize")
    await settled(api, sid)
    assert await used(api) == (1, 2, 2048)
    await counted.delete_instance(api.store, sid)
    assert await used(api) == (0, 0, 0)


async def test_a_revert_gives_the_new_size_back(api: Api) -> None:
    sid = await charged_server(api)
    await api.servers.resize(sid, "wide")  # more vCPUs, less RAM: the max of each is held
    assert await used(api) == (1, 2, 128)
    await settled(api, sid)
    await api.servers.action(sid, "revert-resize")
    await settled(api, sid)
    assert await used(api) == (1, 1, 128)


async def test_a_failed_resize_gives_the_new_size_back(api: Api) -> None:
    sid = await charged_server(api)
    api.compute.failing.add("ResizeInstance")
    await api.servers.resize(sid, "big")
    await settled(api, sid)
    assert await used(api) == (1, 1, 128)


async def test_a_resize_over_quota_is_refused_and_changes_nothing(api: Api) -> None:
    sid = await charged_server(api)
    await limit(api, cores=1)
    before = await api.store.get(keys.instance(sid))
    with pytest.raises(QuotaExceeded) as info:
        await api.servers.resize(sid, "big")
    assert info.value.over == [("cores", 1, 1, 1)]
    after = await api.store.get(keys.instance(sid))
    assert before is not None and after is not None and after.mod_revision == before.mod_revision
    assert await used(api) == (1, 1, 128)


async def test_snapshots_are_images_of_their_project(api: Api) -> None:
    sid = await charged_server(api)
    image = await api.servers.snapshot(sid, "backup")
    await settled(api, sid)
    usage = await Quotas(api.store).usage("alice")
    assert (usage.images, usage.image_bytes) == (1, (await api.images.get(image.id)).size_bytes)
    await limit(api, images=1)
    with pytest.raises(QuotaExceeded):
        await api.servers.snapshot(sid, "another")
    await api.images.delete(image.id)
    usage = await Quotas(api.store).usage("alice")
    assert (usage.images, usage.image_bytes) == (0, 0)


async def test_a_failed_snapshot_gives_its_image_back(api: Api) -> None:
    sid = await charged_server(api)
    api.compute.failing.add("SnapshotInstance")
    await api.servers.snapshot(sid, "backup")
    await settled(api, sid)
    usage = await Quotas(api.store).usage("alice")
    assert (usage.images, usage.image_bytes) == (0, 0)

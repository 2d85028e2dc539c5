"""Api replicas sharing one etcd and one image directory: seeding happens once however many start
together, and one replica's byte sweep never takes another's upload in progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from services.api.flavors.manager import SEED_FLAVORS, FlavorsManager
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.api.seeding import seed_claim
from services.core import context, keys
from services.core.context import RequestContext
from services.core.etcd import Store
from stratus.v1 import flavors_pb2, images_pb2

ALICE = RequestContext("alice", "alice", frozenset({"member"}))
REPLICAS = 4


def replicas(store: Store, tmp_path: Path) -> list[ImagesManager]:
    """Managers as separate api processes have them: their own objects, the same etcd and directory."""
    return [ImagesManager(store, ImageFiles(tmp_path / "images"), lease_ttl_s=2) for _ in range(REPLICAS)]


async def test_replicas_seeding_together_make_one_tiny_image(store: Store, tmp_path: Path) -> None:
    with context.bound(context.SYSTEM):
        await asyncio.gather(*(images.seed() for images in replicas(store, tmp_path)))
        await replicas(store, tmp_path)[0].seed()  # a replica started later finds it
    kvs, _ = await store.read_all(keys.IMAGES, most=100_000)
    tiny = [images_pb2.Image.FromString(kv.value) for kv in kvs]
    assert [(i.name, i.status) for i in tiny] == [("tiny", images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE)]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [tiny[0].id]  # one file, no part left
    claims, _ = await store.read_all(keys.SEEDING, most=100_000)
    assert claims == []  # released when done


async def test_replicas_seeding_together_make_one_of_each_flavor(store: Store) -> None:
    await asyncio.gather(*(FlavorsManager(store).seed() for _ in range(REPLICAS)))
    kvs, _ = await store.read_all(keys.FLAVORS, most=100_000)
    names = sorted(flavors_pb2.Flavor.FromString(kv.value).name for kv in kvs)
    assert names == sorted(name for name, *_ in SEED_FLAVORS)


async def test_a_claim_held_by_a_process_that_died_goes_with_its_lease(store: Store) -> None:
    lease = await store.grant(2)
    await store.put(keys.seeding("thing"), b"dead-host:1", lease)
    order: list[str] = []

    async def seeder() -> None:
        async with seed_claim(store, "thing", 2):
            order.append("seeded")

    task = asyncio.create_task(seeder())
    await asyncio.sleep(0.5)
    assert order == []  # waits while the claim is held
    await store.revoke(lease)  # the holder's lease ends (as when it dies and its TTL runs out)
    await asyncio.wait_for(task, 10)
    assert order == ["seeded"] and await store.get(keys.seeding("thing")) is None


async def test_one_replicas_sweep_leaves_another_replicas_upload_alone(store: Store, tmp_path: Path) -> None:
    uploading, sweeping = replicas(store, tmp_path)[:2]
    reached, release = asyncio.Event(), asyncio.Event()

    async def held() -> AsyncIterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="u", disk_format="raw"))
        yield images_pb2.UploadImageRequest(chunk=b"first half")
        reached.set()  # the record is SAVING and its part file is on disk
        await release.wait()
        yield images_pb2.UploadImageRequest(chunk=b", second half")

    with context.bound(ALICE):
        upload = asyncio.create_task(uploading.upload(held()))
        await reached.wait()
        assert [p.suffix for p in (tmp_path / "images").iterdir()] == [".part"]
        assert await sweeping.sweep() == 0
        release.set()
        image = await upload
    assert image.size_bytes == len(b"first half, second half")
    assert await sweeping.sweep() == 0
    assert [p.name for p in (tmp_path / "images").iterdir()] == [image.id]

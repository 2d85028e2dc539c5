"""ImagesManager over a real etcd: members (bounded, gone with their image), the upload's lease
(a SAVING record vanishes with it; an ACTIVE one is detached from it) and the sweep of bytes no
record names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.api.images import members as image_members
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.core import keys
from services.core.errors import Aborted, NotFound, ResourceExhausted
from services.core.etcd import Store
from stratus.v1 import images_pb2
from tests.unit.api.images.uploads import stream

V = images_pb2.ImageVisibility


@pytest.fixture
def images(store: Store, tmp_path: Path) -> ImagesManager:
    return ImagesManager(store, ImageFiles(tmp_path / "images"), max_bytes=1024, lease_ttl_s=2)


async def test_members_are_bounded_and_go_with_their_image(
    store: Store, images: ImagesManager, as_alice: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = await images.upload(
        stream(images_pb2.Image(name="s", disk_format="raw", visibility=V.IMAGE_VISIBILITY_SHARED), b"x")
    )
    monkeypatch.setattr(image_members, "MAX_IMAGE_MEMBERS", 3)
    await asyncio.gather(*(images.add_member(image.id, f"p{i}") for i in range(3)))
    with pytest.raises(ResourceExhausted, match="3 projects"):
        await images.add_member(image.id, "p9")
    assert len((await images.list_members("s")).members) == 3
    await images.delete(image.id)
    members, _ = await store.read_all(keys.IMAGE_MEMBERS, most=100_000)
    assert members == []
    with pytest.raises(NotFound):
        await images.add_member(image.id, "p9")


async def test_concurrent_member_adds_never_pass_the_bound(
    images: ImagesManager, as_alice: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = await images.upload(
        stream(images_pb2.Image(name="s", disk_format="raw", visibility=V.IMAGE_VISIBILITY_SHARED), b"x")
    )
    monkeypatch.setattr(image_members, "MAX_IMAGE_MEMBERS", 4)
    results = await asyncio.gather(*(images.add_member(image.id, f"p{i}") for i in range(12)), return_exceptions=True)
    assert sum(isinstance(r, images_pb2.ImageMember) for r in results) == 4
    assert all(isinstance(r, (images_pb2.ImageMember, ResourceExhausted, Aborted)) for r in results)
    assert len((await images.list_members(image.id)).members) == 4


async def test_a_saving_upload_is_leased_and_an_active_image_is_not(
    store: Store, images: ImagesManager, as_alice: None
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def held() -> AsyncIterator[images_pb2.UploadImageRequest]:
        async for message in stream(images_pb2.Image(name="u", disk_format="raw"), b"x"):
            yield message
        reached.set()  # every chunk taken: the SAVING record is written
        await release.wait()

    upload = asyncio.create_task(images.upload(held()))
    await reached.wait()
    kvs, _ = await store.read_all(keys.IMAGES, most=100_000)
    assert kvs[0].lease != 0  # SAVING: bound to the upload's lease
    release.set()
    image = await upload
    kv = await store.get(keys.image(image.id))
    assert kv is not None and kv.lease == 0 and image.status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE


async def test_the_sweep_removes_only_bytes_no_record_names(
    store: Store, images: ImagesManager, tmp_path: Path, as_alice: None
) -> None:
    image = await images.upload(stream(images_pb2.Image(name="kept", disk_format="raw"), b"x"))
    root = tmp_path / "images"
    (root / "dead-upload.part").write_bytes(b"half")
    (root / "dead-image").write_bytes(b"whole")
    assert await images.sweep() == 2
    assert sorted(p.name for p in root.iterdir()) == [image.id]

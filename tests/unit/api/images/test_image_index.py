"""The images' indexes against a real etcd: every write keeps record and index entries in step
(upload, rename, visibility, members, delete, an upload's lease), lookups by name and listings go
through them, and records from before them are indexed by the backfill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.api.images import index, lookup, manager
from services.api.images import members as image_members
from services.api.images.access import Viewer
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.api.quotas import counted
from services.core import context, keys
from services.core.context import RequestContext
from services.core.errors import InvalidArgument, NotFound
from services.core.etcd import Store
from stratus.v1 import images_pb2

V = images_pb2.ImageVisibility
ALICE = RequestContext("alice", "alice", frozenset({"member"}))
BOB = RequestContext("bob", "bob", frozenset({"member"}))
ADMIN = RequestContext("admin", "admin", frozenset({"admin"}))
INDEXES = (keys.IMAGE_NAMES, keys.PROJECT_IMAGES, keys.PROJECT_SHARED_IMAGES, keys.SAVING_SNAPSHOTS)


@pytest.fixture
def images(store: Store, tmp_path: Path) -> ImagesManager:
    return ImagesManager(store, ImageFiles(tmp_path / "images"), max_bytes=1024, lease_ttl_s=2)


@pytest.fixture
def as_user() -> Iterator[None]:
    """Binds ``ALICE``; a test binds someone else with ``bind``."""
    token = context.bind(ALICE)
    yield
    context.unbind(token)


def bind(ctx: RequestContext) -> None:
    context.bind(ctx)  # each async test runs in a task of its own: the binding ends with it


async def under(store: Store, *prefixes: str) -> list[str]:
    found: list[str] = []
    for prefix in prefixes:
        kvs, _ = await store.read_all(prefix, most=1000)
        found += [kv.key for kv in kvs]
    return sorted(found)


async def upload(
    images: ImagesManager, name: str, visibility: images_pb2.ImageVisibility.ValueType = V.IMAGE_VISIBILITY_PRIVATE
) -> images_pb2.Image:
    async def stream() -> AsyncIterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name=name, disk_format="raw",
                                                                      visibility=visibility))  # fmt: skip
        yield images_pb2.UploadImageRequest(chunk=b"x")

    return await images.upload(stream())


async def test_writes_keep_the_name_and_project_entries_with_the_record(
    store: Store, images: ImagesManager, as_user: None
) -> None:
    image = await upload(images, "a/b c")  # any name: quoted into one key segment
    assert await under(store, *INDEXES) == sorted(
        [keys.image_name("a/b c", "alice", image.id), keys.project_image("alice", image.id)]
    )
    bind(ADMIN)
    await images.update(
        images_pb2.UpdateImageRequest(id=image.id, name="renamed", visibility=V.IMAGE_VISIBILITY_PUBLIC)
    )
    assert await under(store, *INDEXES) == sorted([
        keys.image_name("renamed", "alice", image.id), keys.image_name("renamed", keys.PUBLIC_SCOPE, image.id),
        keys.project_image("alice", image.id), keys.project_image(keys.PUBLIC_SCOPE, image.id),
    ])  # fmt: skip
    await images.update(images_pb2.UpdateImageRequest(id=image.id, visibility=V.IMAGE_VISIBILITY_PRIVATE))
    assert await under(store, *INDEXES) == sorted(
        [keys.image_name("renamed", "alice", image.id), keys.project_image("alice", image.id)]
    )
    await images.delete(image.id)
    assert await under(store, *INDEXES, keys.IMAGES) == []


async def test_an_uploads_entries_share_its_lease_until_it_is_active(
    store: Store, images: ImagesManager, as_user: None
) -> None:
    image = images_pb2.Image(id="i1", name="snap", owner_project_id="alice", properties={"instance_uuid": "s1"},
                             status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING)  # fmt: skip
    lease = await store.grant(60)
    await images.put(image, lease)
    entries = [await store.get(k) for k in index.index_keys(image)]
    assert keys.saving_snapshot("s1", "i1") in index.index_keys(image)
    assert all(kv is not None and kv.lease == lease for kv in entries)
    assert (await images.saving_snapshot_of("s1")) == image
    await store.revoke(lease)  # the upload's process died: record and entries go together
    assert await under(store, *INDEXES, keys.IMAGES) == []
    assert await images.saving_snapshot_of("s1") is None


async def test_activation_drops_the_lease_and_the_saving_entry(
    store: Store, images: ImagesManager, as_user: None
) -> None:
    image = images_pb2.Image(id="i2", name="snap", owner_project_id="alice", properties={"instance_uuid": "s2"},
                             status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING)  # fmt: skip
    await images.put(image, await store.grant(60))
    image.status, image.size_bytes = images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE, 1
    await images.activate(image)
    assert await under(store, keys.SAVING_SNAPSHOTS) == []
    entries = [await store.get(k) for k in index.index_keys(image)]
    assert entries and all(kv is not None and kv.lease == 0 for kv in entries)


async def test_members_have_shared_entries_that_go_with_them_and_with_the_image(
    store: Store, images: ImagesManager, as_user: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = await upload(images, "s", V.IMAGE_VISIBILITY_SHARED)
    for project in ("p1", "p2", "p3", "p4"):
        await images.add_member(image.id, project)
    await images.remove_member(image.id, "p4")
    assert await under(store, keys.PROJECT_SHARED_IMAGES) == [
        keys.project_shared_image(p, image.id) for p in ("p1", "p2", "p3")
    ]
    monkeypatch.setattr(counted, "MEMBERS_WITH_IMAGE", 1)  # more than the image's transaction takes:
    monkeypatch.setattr(image_members, "SHED_BATCH", 1)  # shed first, one a transaction
    await images.delete(image.id)
    assert await under(store, keys.IMAGE_MEMBERS, keys.PROJECT_SHARED_IMAGES, *INDEXES, keys.IMAGES) == []


async def test_a_name_resolves_tier_by_tier(store: Store, images: ImagesManager, as_user: None) -> None:
    bind(BOB)
    bobs_shared = await upload(images, "img", V.IMAGE_VISIBILITY_SHARED)
    await images.add_member(bobs_shared.id, "alice")
    bobs_private = await upload(images, "hidden")
    bind(ADMIN)
    public = await upload(images, "img", V.IMAGE_VISIBILITY_PUBLIC)
    alice = Viewer("alice")
    assert (await lookup.by_name(store, "img", alice, "id")).id == bobs_shared.id  # shared before public
    assert (await lookup.by_name(store, "img", Viewer("carol"), "id")).id == public.id
    with pytest.raises(NotFound):
        await lookup.by_name(store, "hidden", alice, "id")
    assert (await lookup.by_name(store, "hidden", Viewer("admin", is_admin=True), "id")).id == bobs_private.id
    bind(ALICE)
    own = await upload(images, "img")
    assert (await images.get("img")).id == own.id  # the caller's own project first
    await upload(images, "img")
    with pytest.raises(InvalidArgument, match="2 images are named 'img'"):
        await images.get("img")


async def test_a_listing_merges_own_public_and_shared_in_id_order(
    store: Store, images: ImagesManager, as_user: None
) -> None:
    bind(BOB)
    shared = await upload(images, "shared", V.IMAGE_VISIBILITY_SHARED)
    await images.add_member(shared.id, "alice")
    unshared = await upload(images, "was-shared", V.IMAGE_VISIBILITY_SHARED)
    await images.add_member(unshared.id, "alice")
    await images.update(images_pb2.UpdateImageRequest(id=unshared.id, visibility=V.IMAGE_VISIBILITY_PRIVATE))
    await upload(images, "bobs")
    bind(ADMIN)
    public = await upload(images, "public", V.IMAGE_VISIBILITY_PUBLIC)
    bind(ALICE)
    own = [await upload(images, f"own-{i}") for i in range(3)]
    expected = sorted([shared.id, public.id, *(i.id for i in own)])
    seen: list[str] = []
    token = ""
    while True:
        page = await images.list(2, token)
        seen += [i.id for i in page.images]
        token = page.next_page_token
        if not token:
            break
    assert seen == expected
    bind(ADMIN)
    assert len((await images.list(100, "")).images) == 7  # an admin: every image


async def test_the_backfill_indexes_records_from_before_the_indexes(
    store: Store, images: ImagesManager, as_user: None
) -> None:
    old = images_pb2.Image(id="old", name="legacy", owner_project_id="alice", visibility=V.IMAGE_VISIBILITY_SHARED,
                           status=images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE)  # fmt: skip
    await store.put(keys.image(old.id), old.SerializeToString())
    await store.put(keys.image_member(old.id, "bob"), images_pb2.ImageMember().SerializeToString())
    assert await index.backfill(store) == 2
    assert await under(store, *INDEXES) == sorted([*index.index_keys(old), keys.project_shared_image("bob", old.id)])
    assert await index.backfill(store) == 0  # once per deployment
    assert (await lookup.by_name(store, "legacy", Viewer("bob"), "id")).id == "old"


async def test_the_sweep_reads_only_its_files_records_spread_over_its_interval(
    images: ImagesManager, tmp_path: Path, as_user: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = await upload(images, "kept")
    root = tmp_path / "images"
    for n in range(3):
        (root / f"dead-{n}").write_bytes(b"x")
    monkeypatch.setattr(manager, "GET_BATCH", 1)  # four batches, three pauses of a quarter of 0.4 s
    clock = asyncio.get_running_loop().time
    started = clock()
    assert await images.sweep(spread_s=0.4) == 3
    assert sorted(p.name for p in root.iterdir()) == [kept.id]
    assert 0.25 <= clock() - started < 2.0

"""Images' minimums over a real etcd: set at upload and by UpdateImage (the owner only, bounded),
the virtual size measured from the bytes of an upload and of a compute's snapshot, and the flavor
checked against them when a server is created and resized (SpecResolver)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.api.flavors.manager import FlavorsManager
from services.api.flows.request_spec import SpecResolver
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.api.images.minimums import FLAVOR_TOO_SMALL, GiB
from services.api.images.store import ImageStoreManager
from services.api.server_groups.manager import ServerGroupsManager
from services.core import context
from services.core.context import RequestContext
from services.core.errors import InvalidArgument, PermissionDenied
from services.core.etcd import Store
from services.core.ids import new_id
from stratus.imagestore.v1 import imagestore_pb2
from stratus.v1 import images_pb2, servers_pb2
from tests.unit.api.images.uploads import ALICE, stream

BOB = RequestContext("bob", "bob", frozenset({"member"}))
V = images_pb2.ImageVisibility
QCOW2_20G = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", 20 * GiB) + b"\0" * 480


@pytest.fixture
def images(store: Store, tmp_path: Path) -> ImagesManager:
    return ImagesManager(store, ImageFiles(tmp_path / "images"), lease_ttl_s=2)


async def test_an_upload_keeps_its_minimums_and_measures_its_disk(images: ImagesManager, as_alice: None) -> None:
    raw = await images.upload(stream(images_pb2.Image(name="r", disk_format="raw", min_disk_gb=2, min_ram_mb=256,
                                                      virtual_size_bytes=1), b"\x55" * 700, b"\xaa" * 324))  # fmt: skip
    assert (raw.min_disk_gb, raw.min_ram_mb, raw.virtual_size_bytes) == (2, 256, 1024)  # the client's size ignored
    qcow2 = await images.upload(stream(images_pb2.Image(name="q", disk_format="qcow2"), QCOW2_20G[:10], QCOW2_20G[10:]))
    assert (qcow2.size_bytes, qcow2.virtual_size_bytes) == (len(QCOW2_20G), 20 * GiB)
    assert (await images.get("q")).virtual_size_bytes == 20 * GiB  # stored in the record


async def test_the_owner_sets_and_clears_minimums(images: ImagesManager, as_alice: None) -> None:
    image = await images.upload(stream(images_pb2.Image(name="m", disk_format="raw", min_ram_mb=64), b"x"))
    updated = await images.update(images_pb2.UpdateImageRequest(id="m", min_disk_gb=3))
    assert (updated.min_disk_gb, updated.min_ram_mb, updated.name) == (3, 64, "m")  # min_ram_mb absent: unchanged
    cleared = await images.update(images_pb2.UpdateImageRequest(id=image.id, min_disk_gb=0, min_ram_mb=0))
    assert (cleared.min_disk_gb, cleared.min_ram_mb) == (0, 0)
    with pytest.raises(InvalidArgument) as info:
        await images.update(images_pb2.UpdateImageRequest(id="m", min_disk_gb=-1, min_ram_mb=2**40))
    assert [field for field, _ in info.value.violations] == ["min_disk_gb", "min_ram_mb"]


async def test_only_the_owner_sets_minimums(images: ImagesManager) -> None:
    with context.bound(ALICE):
        image = await images.upload(
            stream(images_pb2.Image(name="s", disk_format="raw", visibility=V.IMAGE_VISIBILITY_SHARED), b"x")
        )
        await images.add_member(image.id, "bob")
    with context.bound(BOB), pytest.raises(PermissionDenied):
        await images.update(images_pb2.UpdateImageRequest(id=image.id, min_disk_gb=5))


async def test_a_snapshot_written_by_a_compute_is_measured(store: Store, images: ImagesManager) -> None:
    """The compute uploads the flattened qcow2 of the server's disk through the ImageStore."""
    saving = images_pb2.Image(id=new_id(), name="snap", status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING,
                              disk_format="qcow2", owner_project_id="alice", min_disk_gb=20)  # fmt: skip
    await images.put(saving)

    async def write() -> AsyncIterator[imagestore_pb2.WriteImageRequest]:
        yield imagestore_pb2.WriteImageRequest(image_id=saving.id)
        yield imagestore_pb2.WriteImageRequest(chunk=QCOW2_20G)

    done = await ImageStoreManager(store, images).write(write())
    assert (done.status, done.virtual_size_bytes, done.min_disk_gb) == (
        images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE, 20 * GiB, 20)  # fmt: skip


async def test_create_and_resize_refuse_a_flavor_below_the_image(
    store: Store, images: ImagesManager, as_alice: None
) -> None:
    flavors = FlavorsManager(store)
    await flavors.seed()
    specs = SpecResolver(store, flavors, images, ServerGroupsManager(store))
    image = await images.upload(stream(images_pb2.Image(name="snap-1", disk_format="qcow2", min_disk_gb=20),
                                       QCOW2_20G))  # fmt: skip
    server = servers_pb2.Server(name="s", flavor_id="m1.tiny", image_id="snap-1")
    with pytest.raises(InvalidArgument) as info:
        await specs.resolve(server, "alice")
    assert info.value.reason == FLAVOR_TOO_SMALL
    fields = [field for field, _ in info.value.violations]
    assert fields == ["server.flavor_id"]
    assert (f"flavor m1.tiny has 1 GB of disk; image snap-1 needs at least 20 GB (min_disk_gb 20; a disk of "
            f"{20 * GiB} bytes)") in info.value.message  # fmt: skip
    server.flavor_id = "m1.small"
    assert (await specs.resolve(server, "alice")).image.id == image.id
    tiny = await flavors.get("m1.tiny")
    with pytest.raises(InvalidArgument, match=r"flavor_id: flavor m1\.tiny has 1 GB of disk"):
        await specs.check_image_fits(tiny, image.id, "flavor_id")
    await specs.check_image_fits(tiny, "gone", "flavor_id")  # an image deleted since: nothing to check

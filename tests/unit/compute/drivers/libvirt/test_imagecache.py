"""The per-host image cache, with a fake image service serving bytes from a dict."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.compute.drivers.base import BadImage, ImageError, ImageInfo, ImageService
from services.compute.drivers.libvirt.imagecache import CachedImage, ImageCache

RAW = b"a raw disk image".ljust(64 * 1024, b"\0")
DAY = 86400.0


@dataclass
class Image:
    content: bytes
    disk_format: str = "raw"
    name: str = "cirros"


@dataclass
class FakeImages(ImageService):
    """Writes the bytes of ``images``; ``fail`` makes the next downloads raise ImageError."""

    images: dict[str, Image]
    delay_s: float = 0.0
    fail: int = 0
    downloads: list[str] = field(default_factory=list)

    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        self.downloads.append(image_id)
        await asyncio.to_thread(dest.write_bytes, b"partial")
        await asyncio.sleep(self.delay_s)
        if self.fail:
            self.fail -= 1
            raise ImageError(f"image {image_id}: checksum mismatch")
        image = self.images[image_id]
        await asyncio.to_thread(dest.write_bytes, image.content)
        digest = hashlib.sha256(image.content).hexdigest()
        return ImageInfo(image_id, image.name, digest, len(image.content), image.disk_format, {"os": "linux"})

    async def upload(self, image_id: str, src: Path) -> None:
        self.images[image_id] = Image(await asyncio.to_thread(src.read_bytes))


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_get_downloads_verifies_and_describes(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)})
    cached = await ImageCache(tmp_path / "cache", images, DAY).get("img-1")
    assert cached.path == tmp_path / "cache" / "img-1"
    assert cached.path.read_bytes() == RAW
    assert cached.virtual_size == len(RAW)
    assert (cached.info.id, cached.info.name, cached.info.disk_format) == ("img-1", "cirros", "raw")
    assert dict(cached.info.properties) == {"os": "linux"}
    assert names(tmp_path / "cache") == ["img-1", "img-1.json"]
    assert json.loads((tmp_path / "cache" / "img-1.json").read_text())["virtual_size"] == len(RAW)


async def test_concurrent_gets_download_once(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)}, delay_s=0.05)
    cache = ImageCache(tmp_path, images, DAY)
    results = await asyncio.gather(*(cache.get("img-1") for _ in range(20)))
    assert images.downloads == ["img-1"]
    assert {r.path for r in results} == {tmp_path / "img-1"}
    assert all(r == results[0] for r in results)


async def test_two_caches_on_one_root_download_once(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)}, delay_s=0.05)
    first, second = ImageCache(tmp_path, images, DAY), ImageCache(tmp_path, images, DAY)
    results = await asyncio.gather(*(c.get("img-1") for c in (first, second) * 5))
    assert images.downloads == ["img-1"]
    assert {r.path for r in results} == {tmp_path / "img-1"}
    assert names(tmp_path) == ["img-1", "img-1.json"]


async def test_failed_download_leaves_nothing_and_is_retried(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)}, fail=1)
    cache = ImageCache(tmp_path, images, DAY)
    with pytest.raises(ImageError, match=r"^image img-1: image img-1: checksum mismatch$"):
        await cache.get("img-1")
    assert names(tmp_path) == []
    assert (await cache.get("img-1")).path.read_bytes() == RAW
    assert images.downloads == ["img-1", "img-1"]


async def test_wrong_format_fails_and_leaves_nothing(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW, disk_format="qcow2", name="liar")})
    with pytest.raises(BadImage, match=r"^image img-1 \(liar\): image is raw but declared qcow2$"):
        await ImageCache(tmp_path, images, DAY).get("img-1")
    assert names(tmp_path) == []


async def test_any_image_service_failure_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"^image img-1: 'img-1'$") as caught:
        await ImageCache(tmp_path, FakeImages({}), DAY).get("img-1")
    assert isinstance(caught.value.__cause__, KeyError)
    assert names(tmp_path) == []


async def test_cancelled_get_leaves_nothing_and_frees_the_lock(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)}, delay_s=10)
    cache = ImageCache(tmp_path, images, DAY)
    task = asyncio.create_task(cache.get("img-1"))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert names(tmp_path) == []
    images.delay_s = 0
    assert (await ImageCache(tmp_path, images, DAY).get("img-1")).path.read_bytes() == RAW


@pytest.mark.parametrize("image_id", ["", "../etc/passwd", "a/b", ".hidden", "x" * 129, "img.json", "img.lock"])
async def test_bad_image_id_fails_before_touching_files(tmp_path: Path, image_id: str) -> None:
    images = FakeImages({})
    with pytest.raises(ImageError, match="not a valid image id"):
        await ImageCache(tmp_path / "cache", images, DAY).get(image_id)
    assert images.downloads == []
    assert not (tmp_path / "cache").exists()


async def test_torn_metadata_is_fetched_again(tmp_path: Path) -> None:
    images = FakeImages({"img-1": Image(RAW)})
    cache = ImageCache(tmp_path, images, DAY)
    await cache.get("img-1")
    (tmp_path / "img-1.json").write_text('{"id": "img-1", "na')
    assert (await cache.get("img-1")).info.name == "cirros"
    assert images.downloads == ["img-1", "img-1"]


async def test_age_out(tmp_path: Path) -> None:
    clock = Clock()
    images = FakeImages({i: Image(RAW) for i in ("old", "in-use", "recent")})
    cache = ImageCache(tmp_path, images, max_age_s=DAY, clock=clock)
    for image_id in ("old", "in-use", "recent"):
        await cache.get(image_id)
    clock.now += DAY / 2
    await cache.get("recent")  # used again: its age starts over
    clock.now += DAY / 2 + 1
    (tmp_path / "crashed.part").write_bytes(b"left by a dead process")
    assert await cache.age_out({"in-use"}) == ["crashed", "old"]
    assert names(tmp_path) == ["in-use", "in-use.json", "recent", "recent.json"]
    clock.now += DAY / 2  # "in-use" was marked as used by the last age_out
    assert await cache.age_out(set()) == ["recent"]
    assert await cache.age_out(set()) == []
    assert isinstance(await cache.get("old"), CachedImage)  # fetched again
    assert images.downloads.count("old") == 2


async def test_age_out_skips_an_image_being_fetched(tmp_path: Path) -> None:
    clock = Clock()
    images = FakeImages({"img-1": Image(RAW)}, delay_s=0.1)
    cache = ImageCache(tmp_path, images, max_age_s=0.0, clock=clock)
    fetching = asyncio.create_task(cache.get("img-1"))
    await asyncio.sleep(0.02)
    other_process = ImageCache(tmp_path, images, max_age_s=0.0, clock=clock)
    assert await cache.age_out(set()) == []
    assert await other_process.age_out(set()) == []
    assert (await fetching).path.read_bytes() == RAW


async def test_age_out_of_an_empty_or_missing_root(tmp_path: Path) -> None:
    assert await ImageCache(tmp_path / "none", FakeImages({}), DAY).age_out(set()) == []


async def test_unwritable_cache_is_an_image_error(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.touch()
    with pytest.raises(ImageError, match="cannot create the image cache"):
        await ImageCache(root, FakeImages({"img-1": Image(RAW)}), DAY).get("img-1")

"""An ImageService over files on this machine: the libvirt driver's tests use it in place of the
api's ImageStore (the same interface, as httpx's MockTransport stands in for the network)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from services.compute.drivers.base import ImageError, ImageInfo, ImageService


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            sha.update(chunk)
    return sha.hexdigest()


@dataclass
class FileImageService(ImageService):
    images: dict[str, tuple[ImageInfo, Path]] = field(default_factory=dict)
    uploads: dict[str, Path] = field(default_factory=dict)
    upload_dir: Path | None = None
    downloads: int = 0

    def add(self, image_id: str, path: Path, disk_format: str, checksum: str | None = None) -> ImageInfo:
        info = ImageInfo(id=image_id, name=image_id, checksum=checksum or sha256_of(path),
                         size_bytes=path.stat().st_size, disk_format=disk_format)  # fmt: skip
        self.images[image_id] = (info, path)
        return info

    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        if image_id not in self.images:
            raise ImageError(f"image {image_id} not found")
        self.downloads += 1
        info, path = self.images[image_id]
        await asyncio.to_thread(shutil.copyfile, path, dest)
        if await asyncio.to_thread(sha256_of, dest) != info.checksum:
            await asyncio.to_thread(dest.unlink)
            raise ImageError(f"image {image_id}: checksum mismatch")
        return info

    async def upload(self, image_id: str, src: Path) -> None:
        assert self.upload_dir is not None, "give upload_dir to accept snapshots"
        dest = self.upload_dir / image_id
        await asyncio.to_thread(shutil.copyfile, src, dest)
        self.uploads[image_id] = dest

"""Image bytes on the api's disk: written to a part file with a running sha256, renamed when whole."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from services.core.private_files import private_dir

CHUNK = 1024 * 1024
PART = ".part"


class ImageFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)  # private images and snapshots: only this user may read them

    def path(self, image_id: str) -> Path:
        return self.root / image_id

    def writer(self, image_id: str) -> ImageWriter:
        return ImageWriter(self.root / f"{image_id}{PART}", self.path(image_id))

    def read(self, image_id: str) -> AsyncIterator[bytes]:
        return read_chunks(self.path(image_id))

    def ids(self) -> set[str]:
        """The image ids with bytes here, whole or in part."""
        return {p.name.removesuffix(PART) for p in self.root.iterdir() if p.is_file()}

    def remove(self, image_id: str) -> None:
        for path in (self.path(image_id), self.root / f"{image_id}{PART}"):
            path.unlink(missing_ok=True)


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes in CHUNK-sized pieces, read off the event loop (never whole in memory)."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk


class ImageWriter:
    def __init__(self, part: Path, final: Path) -> None:
        self._part = part
        self._final = final
        self._fh = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb")
        self._sha = hashlib.sha256()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)
        await asyncio.to_thread(self._fh.write, chunk)

    async def commit(self) -> str:
        """Makes the file whole on disk and returns its hex sha256."""
        await asyncio.to_thread(self._fh.flush)
        await asyncio.to_thread(os.fsync, self._fh.fileno())
        self._fh.close()
        self._part.replace(self._final)
        return self._sha.hexdigest()

    def abort(self) -> None:
        self._fh.close()
        self._part.unlink(missing_ok=True)

"""Images cached once per host, shared by every compute process on the machine.

Layout under the root: ``<image_id>`` (the bytes, in their own format), ``<image_id>.json`` (the
ImageInfo and virtual size; its mtime is the last use) and, while a process works on the image,
``<image_id>.lock`` (flock) and ``<image_id>.part`` (a download in progress). The image file is
renamed into place last, so a crash never leaves a half image under its final name.

Processes sharing a root must all run ``age_out`` more often than ``max_age_s``: each run marks
the images its instances use as used now, and only images nobody marked are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from services.compute.drivers.base import BadImage, ImageError, ImageInfo, ImageService
from services.compute.drivers.libvirt import disks
from services.core.backoff import LOCK_S, backoff
from services.core.private_files import private_dir

IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SUFFIXES = (".json", ".part", ".lock")


@dataclass(frozen=True, slots=True)
class CachedImage:
    """A verified image in the cache: ``path`` holds bytes of format ``info.disk_format``."""

    path: Path
    info: ImageInfo
    virtual_size: int


def check_image_id(image_id: str) -> None:
    """ImageError unless ``image_id`` is safe as a file name in the cache."""
    if not IMAGE_ID_RE.fullmatch(image_id) or image_id.endswith(SUFFIXES):
        raise BadImage(f"image id {image_id!r} is not a valid image id")


def _try_flock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when another holder has it; ImageError
    when the lock file cannot be opened.

    Lock files are removed by their holder, so a lock taken on a file no longer at ``path`` is retried.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ImageError(f"cannot open the lock file {path}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = os.fstat(fd)
            current = os.stat(path)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            if e.errno == errno.ENOENT:
                continue
            raise ImageError(f"cannot lock {path}: {e}") from e
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            return fd
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    """Removes the lock file, then drops the lock (waiters on the removed file retry)."""
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def _flock(path: Path) -> AsyncIterator[None]:
    """Holds an exclusive flock on ``path``, waiting for it without blocking the loop."""
    delays = backoff(*LOCK_S)
    while (fd := _try_flock(path)) is None:  # noqa: ASYNC110 (another process holds it: no event to await)
        await asyncio.sleep(next(delays))
    try:
        yield
    finally:
        _release(path, fd)


def _meta_json(info: ImageInfo, virtual_size: int) -> str:
    doc = asdict(info)
    doc["properties"] = dict(info.properties)
    doc["virtual_size"] = virtual_size
    return json.dumps(doc, sort_keys=True)


def _meta_from_json(text: str) -> tuple[ImageInfo, int]:
    doc = json.loads(text)
    virtual_size = int(doc.pop("virtual_size"))
    return ImageInfo(**doc), virtual_size


class ImageCache:
    """Downloads each image once per host and hands out its verified local copy."""

    def __init__(
        self, root: Path, images: ImageService, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self._images = images
        self._max_age_s = max_age_s
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    def _file(self, image_id: str, suffix: str = "") -> Path:
        return self.root / f"{image_id}{suffix}"

    def _lock(self, image_id: str) -> asyncio.Lock:
        return self._locks.setdefault(image_id, asyncio.Lock())

    def _load(self, image_id: str) -> CachedImage | None:
        """The cached image, marked as used now; None when it is missing or incomplete."""
        meta, path = self._file(image_id, ".json"), self._file(image_id)
        now = self._clock()
        try:
            os.utime(meta, (now, now))
            info, virtual_size = _meta_from_json(meta.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError):
            return None  # a torn metadata file: fetch again, which rewrites it
        if info.id != image_id or not path.is_file():
            return None
        return CachedImage(path=path, info=info, virtual_size=virtual_size)

    async def get(self, image_id: str) -> CachedImage:
        """The image ``image_id``, downloaded and verified first unless cached; ImageError otherwise."""
        check_image_id(image_id)
        async with self._lock(image_id):
            cached = await asyncio.to_thread(self._load, image_id)
            if cached is not None:
                return cached
            try:
                await asyncio.to_thread(private_dir, self.root)
            except OSError as e:
                raise ImageError(f"image {image_id}: cannot create the image cache {self.root}: {e}") from e
            async with _flock(self._file(image_id, ".lock")):
                cached = await asyncio.to_thread(self._load, image_id)
                if cached is not None:
                    return cached
                return await self._fetch(image_id)

    async def _fetch(self, image_id: str) -> CachedImage:
        part = self._file(image_id, ".part")
        label = f"image {image_id}"
        try:
            await asyncio.to_thread(part.unlink, missing_ok=True)  # left by a process that died
            info = await self._images.download(image_id, part)
            label = f"image {image_id} ({info.name})"
            if info.id != image_id:
                raise ImageError(f"the image service sent image {info.id}")
            virtual_size = await disks.check_image(part, info.disk_format)
            await asyncio.to_thread(self._install, image_id, info, virtual_size)
        except BaseException as e:
            await asyncio.to_thread(self._discard_partial, image_id)
            if isinstance(e, Exception):  # the image service's own errors too; cancellation passes
                error = BadImage if isinstance(e, BadImage) else ImageError
                raise error(f"{label}: {e or type(e).__name__}") from e
            raise
        return CachedImage(path=self._file(image_id), info=info, virtual_size=virtual_size)

    def _install(self, image_id: str, info: ImageInfo, virtual_size: int) -> None:
        meta = self._file(image_id, ".json")
        meta.write_text(_meta_json(info, virtual_size))
        now = self._clock()
        os.utime(meta, (now, now))
        os.replace(self._file(image_id, ".part"), self._file(image_id))

    def _discard_partial(self, image_id: str) -> None:
        """Removes a failed fetch's download, and its metadata unless an image is already in place."""
        self._file(image_id, ".part").unlink(missing_ok=True)
        if not self._file(image_id).exists():
            self._file(image_id, ".json").unlink(missing_ok=True)

    def _remove_files(self, image_id: str) -> bool:
        """Removes the image, its metadata and any partial download; whether any of them existed."""
        removed = False
        for suffix in (".json", "", ".part"):  # metadata first: without it the image is not used
            with contextlib.suppress(FileNotFoundError):
                self._file(image_id, suffix).unlink()
                removed = True
        return removed

    def _cached_ids(self) -> set[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return set()
        ids = set()
        for name in names:
            image_id = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
            if IMAGE_ID_RE.fullmatch(image_id) and not image_id.endswith(SUFFIXES):
                ids.add(image_id)
        return ids

    def _touch(self, image_id: str) -> None:
        now = self._clock()
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._file(image_id, ".json"), (now, now))

    def _remove_if_old(self, image_id: str) -> bool:
        try:
            last_used = self._file(image_id, ".json").stat().st_mtime
        except FileNotFoundError:
            last_used = None  # the leftovers of a failed fetch or of a removal cut short
        if last_used is not None and self._clock() - last_used <= self._max_age_s:
            return False
        return self._remove_files(image_id)

    async def _remove_if_unused(self, image_id: str) -> bool:
        lock = self._lock(image_id)
        if lock.locked():
            return False  # being fetched or handed out right now
        async with lock:
            lock_file = self._file(image_id, ".lock")
            fd = _try_flock(lock_file)
            if fd is None:
                return False  # another process is fetching it
            try:
                return await asyncio.to_thread(self._remove_if_old, image_id)
            finally:
                _release(lock_file, fd)

    async def age_out(self, in_use: set[str]) -> list[str]:
        """Marks the images in ``in_use`` as used now and removes the others unused for longer than
        ``max_age_s``, with what failed fetches left behind; the ids of the images removed."""
        removed: list[str] = []
        for image_id in sorted(await asyncio.to_thread(self._cached_ids)):
            if image_id in in_use:
                await asyncio.to_thread(self._touch, image_id)
            elif await self._remove_if_unused(image_id):
                removed.append(image_id)
        return removed

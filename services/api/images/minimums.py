"""What an image needs of a flavor, as Glance records it and Nova checks it: ``min_disk_gb``,
``min_ram_mb`` and the virtual size of its disk.

The owner sets the minimums (at upload, or with UpdateImage); the api measures the virtual size
when the bytes are whole (a qcow2's from its header, a raw image's its length; see ``DiskMeter``).
A snapshot's minimums come from the server, as Nova's do (``snapshot_minimums``). CreateServer and
ResizeServer refuse a flavor below any of them (``check_flavor_fits``) with INVALID_ARGUMENT naming
the flavor field and both sizes, as Nova refuses one with FlavorDiskSmallerThanImage,
FlavorDiskSmallerThanMinDisk or FlavorMemoryTooSmall; a flavor with ``disk_gb`` 0 (boot at the
image's own size) has its disk unchecked, as in Nova.
"""

from __future__ import annotations

import struct

from services.api.validation import Violations
from services.core.errors import InvalidArgument
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

GiB = 1024**3
MIN_DISK_GB_MAX = 1024 * 1024  # the largest flavor disk_gb (flavors/manager.py)
MIN_RAM_MB_MAX = 64 * 1024 * 1024  # the largest flavor ram_mb
FLAVOR_TOO_SMALL = "FLAVOR_TOO_SMALL"  # the ErrorInfo reason of a refused create or resize
QCOW2_MAGIC = b"QFI\xfb"
QCOW2_SIZE_AT = slice(24, 32)  # the qcow2 header's virtual size: big-endian u64 at bytes 24..32
QCOW2_VERSION_AT = slice(4, 8)  # its version: big-endian u32, 2 or 3
QCOW2_VERSIONS = (2, 3)
VIRTUAL_SIZE_MAX = MIN_DISK_GB_MAX * GiB  # no flavor has a larger disk


def validate_minimums(v: Violations, prefix: str, min_disk_gb: int, min_ram_mb: int) -> None:
    """``min_disk_gb`` and ``min_ram_mb`` (named ``prefix`` + the field) within a flavor's bounds."""
    v.int_range(f"{prefix}min_disk_gb", min_disk_gb, 0, MIN_DISK_GB_MAX)
    v.int_range(f"{prefix}min_ram_mb", min_ram_mb, 0, MIN_RAM_MB_MAX)


def gb_for(size_bytes: int) -> int:
    """The GB (GiB, as a flavor's disk) that hold ``size_bytes``, rounded up."""
    return -(-size_bytes // GiB)


def shortfalls(flavor: flavors_pb2.Flavor, image: images_pb2.Image) -> list[str]:
    """Why ``flavor`` cannot boot ``image``, a sentence for its disk and one for its RAM, each naming
    both sizes; none when it can."""
    flavor_name, image_name = flavor.name or flavor.id, image.name or image.id
    why = []
    disk = image.virtual_size_bytes or image.size_bytes
    needed_gb = max(image.min_disk_gb, gb_for(disk))
    if flavor.disk_gb and needed_gb > flavor.disk_gb:
        because = [f"min_disk_gb {image.min_disk_gb}"] if image.min_disk_gb > flavor.disk_gb else []
        because += [f"a disk of {disk} bytes"] if gb_for(disk) > flavor.disk_gb else []
        why.append(f"flavor {flavor_name} has {flavor.disk_gb} GB of disk; image {image_name} needs at least "
                   f"{needed_gb} GB ({'; '.join(because)})")  # fmt: skip
    if image.min_ram_mb > flavor.ram_mb:
        why.append(f"flavor {flavor_name} has {flavor.ram_mb} MB of RAM; image {image_name} needs at least "
                   f"{image.min_ram_mb} MB (min_ram_mb)")  # fmt: skip
    return why


def check_flavor_fits(flavor: flavors_pb2.Flavor, image: images_pb2.Image, field: str) -> None:
    """INVALID_ARGUMENT (reason FLAVOR_TOO_SMALL), naming ``field``, when ``flavor`` is below what
    ``image`` needs."""
    why = shortfalls(flavor, image)
    if why:
        error = InvalidArgument([(field, sentence) for sentence in why], reason=FLAVOR_TOO_SMALL)
        error.metadata = {"flavor_id": flavor.id, "image_id": image.id}
        raise error


def snapshot_minimums(server: servers_pb2.Server, source: images_pb2.Image | None) -> tuple[int, int]:
    """A snapshot's (min_disk_gb, min_ram_mb), as Nova sets them: the disk the larger of the
    source image's min_disk and the server's flavor's disk (Nova: the root_gb it recorded at boot;
    here the flavor the server has now, so a snapshot of a resized server needs the new size,
    which its disk has grown to anyway); the RAM the source image's min_ram (Nova inherits it,
    never the flavor's). A source image deleted since leaves only the flavor's disk."""
    min_disk = source.min_disk_gb if source is not None else 0
    min_ram = source.min_ram_mb if source is not None else 0
    return max(min_disk, server.resources.disk_gb), min_ram


class DiskMeter:
    """The virtual size of the disk in a stream of image bytes, measured as they pass: the size in
    a qcow2 header, or else (raw) the number of bytes. A header that is no qcow2 header after its
    magic (a version other than 2 or 3, a size past ``VIRTUAL_SIZE_MAX``) measures 0, unknown:
    the compute's qemu-img judges such a file (IMAGE_UNUSABLE), not the size check."""

    def __init__(self) -> None:
        self._head = b""
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < QCOW2_SIZE_AT.stop:
            self._head += chunk[: QCOW2_SIZE_AT.stop - len(self._head)]
        self.total += len(chunk)

    @property
    def virtual_size(self) -> int:
        if not self._head.startswith(QCOW2_MAGIC):
            return self.total
        if len(self._head) < QCOW2_SIZE_AT.stop:
            return 0
        version = int(struct.unpack(">I", self._head[QCOW2_VERSION_AT])[0])
        size = int(struct.unpack(">Q", self._head[QCOW2_SIZE_AT])[0])
        return size if version in QCOW2_VERSIONS and size <= VIRTUAL_SIZE_MAX else 0

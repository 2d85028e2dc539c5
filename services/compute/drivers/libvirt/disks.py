"""qemu-img wrappers: inspect, check, overlay, grow and flatten disk images.

Every failure is a DriverError carrying qemu-img's stderr; BadImage when the bytes of an image
are not what they claim to be.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from services.compute.drivers.base import BadImage, DriverError, ImageTooBig
from services.compute.drivers.libvirt import process

QEMU_IMG = "qemu-img"
GiB = 1024**3
IMAGE_FORMATS = ("raw", "qcow2")
INFO_TIMEOUT_S = 60.0  # qemu-img info/check on a hostile image must not hang a spawn
CHECK_CORRUPT = 2  # `qemu-img check` exit statuses: 0 clean, 1 check failed, 2 corrupt, 3 leaks only
CHECK_LEAKS_ONLY = 3


async def _info(path: Path, fmt: str | None, error: type[DriverError]) -> dict[str, Any]:
    argv = [QEMU_IMG, "info", "--output=json", "-U"]
    if fmt is not None:
        argv += ["-f", fmt]
    out = await process.check_output(*argv, str(path), error=error, timeout_s=INFO_TIMEOUT_S)
    try:
        info = json.loads(out)
    except ValueError as e:
        raise error(f"qemu-img info {path}: output is not JSON: {e}") from None
    if not isinstance(info, dict):
        raise error(f"qemu-img info {path}: output is not a JSON object")
    return info


async def image_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` as JSON, readable while a guest uses the disk; ``fmt`` skips probing."""
    return await _info(path, fmt, DriverError)


def virtual_size(info: dict[str, Any]) -> int:
    """The virtual size in bytes from ``image_info``'s answer."""
    size = info.get("virtual-size")
    if not isinstance(size, int):
        raise DriverError(f"qemu-img info of {info.get('filename')}: no virtual size")
    return size


def _refuse_external_files(info: dict[str, Any]) -> None:
    if "backing-filename" in info or "full-backing-filename" in info:
        raise BadImage(f"qcow2 image has a backing file ({info.get('backing-filename')}); only standalone images")
    data = info.get("format-specific", {}).get("data", {})
    if isinstance(data, dict) and "data-file" in data:
        raise BadImage(f"qcow2 image has an external data file ({data['data-file']})")


async def _check_qcow2(path: Path) -> None:
    done = await process.run(QEMU_IMG, "check", "-f", "qcow2", str(path), timeout_s=INFO_TIMEOUT_S)
    if done.returncode == CHECK_CORRUPT:
        raise BadImage(f"qcow2 image is corrupt: {done.error_text}")
    if done.returncode not in (0, CHECK_LEAKS_ONLY):
        raise BadImage(f"qcow2 image cannot be checked: {done.error_text}")


async def check_image(path: Path, declared_format: str) -> int:
    """The virtual size in bytes of the image at ``path`` once it is proved to be a standalone
    image of ``declared_format``; BadImage otherwise."""
    if declared_format not in IMAGE_FORMATS:
        raise BadImage(f"disk format {declared_format!r} is not supported; use one of {', '.join(IMAGE_FORMATS)}")
    info = await _info(path, None, BadImage)
    detected = info.get("format")
    if detected != declared_format:
        raise BadImage(f"image is {detected} but declared {declared_format}")
    if declared_format == "qcow2":
        _refuse_external_files(info)
        await _check_qcow2(path)
    try:
        return virtual_size(info)
    except DriverError as e:
        raise BadImage(str(e)) from None


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


async def _publish(part: Path, dest: Path, *argv: str) -> None:
    """Runs qemu-img ``argv`` (which writes ``part``) and renames ``part`` to ``dest``; no ``part`` is left."""
    try:
        await process.check_output(QEMU_IMG, *argv)
        await asyncio.to_thread(os.replace, part, dest)
    except BaseException as e:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        if isinstance(e, OSError):
            raise DriverError(f"{dest}: {e}") from e
        raise


def _overlay_size(base_size: int, size_gb: int) -> int:
    if size_gb == 0:
        return base_size
    wanted = size_gb * GiB
    if wanted < base_size:
        raise ImageTooBig(
            f"flavor disk is smaller than the image: {size_gb} GiB ({wanted} bytes) < image's {base_size} bytes"
        )
    return wanted


async def create_overlay(base: Path, base_format: str, dest: Path, size_gb: int) -> None:
    """Makes ``dest`` a qcow2 of ``size_gb`` GiB (0: the image's size) on top of ``base`` (an absolute path);
    ImageTooBig when the flavor disk is smaller than the image."""
    if not base.is_absolute():
        raise DriverError(f"backing file {base} must be an absolute path")  # qemu would resolve it from dest's dir
    size = _overlay_size(virtual_size(await image_info(base, base_format)), size_gb)
    part = _part(dest)
    await _publish(part, dest, "create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base), str(part), str(size))


async def grow(path: Path, size_gb: int) -> None:
    """Grows the disk at ``path`` to ``size_gb`` GiB; nothing when it has that size or ``size_gb`` is 0
    (the image's size), DriverError to shrink."""
    if size_gb == 0:
        return
    info = await image_info(path)
    current, wanted = virtual_size(info), size_gb * GiB
    if wanted == current:
        return
    if wanted < current:
        raise DriverError(f"disk {path} is {current} bytes; it cannot shrink to {size_gb} GiB")
    await process.check_output(QEMU_IMG, "resize", "-q", "-f", str(info["format"]), str(path), str(wanted))


async def flatten(src: Path, dest: Path) -> None:
    """Writes ``src`` and its backing chain as one standalone qcow2 at ``dest``."""
    part = _part(dest)
    await _publish(part, dest, "convert", "-U", "-O", "qcow2", str(src), str(part))

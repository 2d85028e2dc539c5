"""qemu-img wrappers, on small real images made with qemu-img."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.compute.drivers.base import BadImage, DriverError, ImageTooBig
from services.compute.drivers.libvirt import disks, process
from services.compute.drivers.libvirt.disks import GiB, check_image, create_overlay, flatten, grow, image_info

MiB = 1024**2


async def qemu_img(*args: str) -> bytes:
    return await process.check_output("qemu-img", *args)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def raw_file(path: Path, size: int = MiB, content: bytes = b"stratus raw bytes") -> Path:
    with path.open("wb") as f:
        f.write(content)
        f.truncate(size)
    return path


async def qcow2_file(path: Path, size: int = 2 * MiB, content: bytes = b"stratus qcow2") -> Path:
    raw = raw_file(path.with_suffix(".src"), size, content)
    await qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(path))
    raw.unlink()
    return path


async def test_check_raw(tmp_path: Path) -> None:
    assert await check_image(raw_file(tmp_path / "a.raw", 3 * MiB), "raw") == 3 * MiB


async def test_check_qcow2(tmp_path: Path) -> None:
    assert await check_image(await qcow2_file(tmp_path / "a.qcow2", 5 * MiB), "qcow2") == 5 * MiB


async def test_raw_declared_qcow2_fails(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="image is raw but declared qcow2"):
        await check_image(raw_file(tmp_path / "a"), "qcow2")


async def test_qcow2_declared_raw_fails(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="image is qcow2 but declared raw"):
        await check_image(await qcow2_file(tmp_path / "a"), "raw")


async def test_random_bytes_declared_qcow2_fail(tmp_path: Path) -> None:
    path = tmp_path / "noise"
    path.write_bytes(os.urandom(256 * 1024))
    with pytest.raises(BadImage):
        await check_image(path, "qcow2")


async def test_broken_qcow2_header_fails(tmp_path: Path) -> None:
    good = (await qcow2_file(tmp_path / "a")).read_bytes()
    bad = tmp_path / "bad"
    bad.write_bytes(good[:8] + b"\xff" * 64 + good[72:])  # the magic stays, the header is nonsense
    with pytest.raises(BadImage):
        await check_image(bad, "qcow2")


async def test_qcow2_with_backing_file_fails(tmp_path: Path) -> None:
    base = raw_file(tmp_path / "base.raw")
    top = tmp_path / "top.qcow2"
    await qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(top))
    with pytest.raises(BadImage, match="backing file"):
        await check_image(top, "qcow2")


async def test_unsupported_declared_format_fails(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="'vmdk' is not supported"):
        await check_image(raw_file(tmp_path / "a"), "vmdk")


async def test_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="qemu-img info failed"):
        await check_image(tmp_path / "missing", "raw")


async def test_create_overlay(tmp_path: Path) -> None:
    base = await qcow2_file(tmp_path / "base")
    disk = tmp_path / "disk"
    await create_overlay(base, "qcow2", disk, size_gb=2)
    info = await image_info(disk)
    assert info["format"] == "qcow2"
    assert info["full-backing-filename"] == str(base)
    assert info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == 2 * GiB
    assert not (tmp_path / "disk.part").exists()


async def test_create_overlay_size_zero_takes_the_image_size(tmp_path: Path) -> None:
    base = raw_file(tmp_path / "base", 3 * MiB)
    await create_overlay(base, "raw", tmp_path / "disk", size_gb=0)
    assert (await image_info(tmp_path / "disk"))["virtual-size"] == 3 * MiB


async def test_flavor_disk_smaller_than_image_fails(tmp_path: Path) -> None:
    base = tmp_path / "base"
    await qemu_img("create", "-q", "-f", "qcow2", str(base), str(2 * GiB))  # sparse: a few KiB on disk
    with pytest.raises(ImageTooBig, match=r"1 GiB .* 2147483648 bytes"):  # the request's fault, not the host's
        await create_overlay(base, "qcow2", tmp_path / "disk", size_gb=1)
    assert names(tmp_path) == ["base"]


async def test_create_overlay_wants_an_absolute_base(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="absolute"):
        await create_overlay(Path("base"), "raw", tmp_path / "disk", size_gb=1)


async def test_grow(tmp_path: Path) -> None:
    disk = await qcow2_file(tmp_path / "disk")
    await grow(disk, 1)
    assert (await image_info(disk))["virtual-size"] == GiB
    await grow(disk, 1)  # already that size
    await grow(disk, 0)  # the image's size: nothing to do
    assert (await image_info(disk))["virtual-size"] == GiB


async def test_grow_never_shrinks(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    await qemu_img("create", "-q", "-f", "qcow2", str(disk), str(2 * GiB))
    with pytest.raises(DriverError, match="cannot shrink"):
        await grow(disk, 1)


async def test_flatten(tmp_path: Path) -> None:
    base = await qcow2_file(tmp_path / "base", content=b"base layer")
    top = tmp_path / "top"
    await create_overlay(base, "qcow2", top, size_gb=0)
    await process.check_output("qemu-io", "-f", "qcow2", "-c", "write -P 0x61 1M 64k", str(top))  # qemu-utils
    flat = tmp_path / "flat"
    await flatten(top, flat)
    info = await image_info(flat)
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info
    await qemu_img("compare", str(top), str(flat))  # exits non-zero when the contents differ
    assert not (tmp_path / "flat.part").exists()
    base.unlink()
    assert (await check_image(flat, "qcow2")) == 2 * MiB  # standalone


async def test_flatten_failure_leaves_no_part(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="qemu-img convert failed"):
        await flatten(tmp_path / "missing", tmp_path / "flat")
    assert names(tmp_path) == []


async def test_missing_qemu_img_is_a_driver_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disks, "QEMU_IMG", str(tmp_path / "no-such-qemu-img"))
    with pytest.raises(DriverError, match="cannot run"):
        await image_info(tmp_path)


async def test_a_tool_that_hangs_is_killed() -> None:
    with pytest.raises(DriverError, match=r"took longer than 0\.05 s"):
        await process.run("sleep", "5", timeout_s=0.05)

"""What an image needs of a flavor (minimums.py): the refusal and its words, a snapshot's minimums
as Nova sets them, the virtual size read from the bytes, and the bounds an owner may set."""

from __future__ import annotations

import struct

import pytest

from services.api.flows.snapshot_start import snapshot_image
from services.api.images import upload
from services.api.images.minimums import (
    FLAVOR_TOO_SMALL,
    MIN_DISK_GB_MAX,
    MIN_RAM_MB_MAX,
    DiskMeter,
    GiB,
    check_flavor_fits,
    gb_for,
    shortfalls,
    snapshot_minimums,
)
from services.core.errors import InvalidArgument
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

TINY = flavors_pb2.Flavor(id="f-tiny", name="m1.tiny", vcpus=1, ram_mb=128, disk_gb=1)
SMALL = flavors_pb2.Flavor(id="f-small", name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)


def image(min_disk_gb: int = 0, min_ram_mb: int = 0, virtual_size_bytes: int = 0) -> images_pb2.Image:
    return images_pb2.Image(id="i-1", name="snap-1", size_bytes=1024, min_disk_gb=min_disk_gb, min_ram_mb=min_ram_mb,
                            virtual_size_bytes=virtual_size_bytes)  # fmt: skip


def qcow2_header(virtual_size: int) -> bytes:
    return b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", virtual_size) + b"\0" * 72


def test_a_flavor_below_min_disk_is_refused_naming_the_field_and_both_sizes() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_flavor_fits(TINY, image(min_disk_gb=20), "server.flavor_id")
    err = info.value
    assert err.reason == FLAVOR_TOO_SMALL
    assert err.metadata == {"flavor_id": "f-tiny", "image_id": "i-1"}
    [(field, why)] = err.violations
    assert field == "server.flavor_id"
    assert why == "flavor m1.tiny has 1 GB of disk; image snap-1 needs at least 20 GB (min_disk_gb 20)"
    check_flavor_fits(SMALL, image(min_disk_gb=20), "server.flavor_id")  # exactly enough


def test_a_flavor_disk_below_the_virtual_size_is_refused() -> None:
    big = image(virtual_size_bytes=2 * GiB + 1)
    [why] = shortfalls(TINY, big)
    assert why == f"flavor m1.tiny has 1 GB of disk; image snap-1 needs at least 3 GB (a disk of {2 * GiB + 1} bytes)"
    assert shortfalls(TINY, image(virtual_size_bytes=GiB)) == []  # a disk of exactly 1 GiB fits


def test_a_record_without_a_virtual_size_is_measured_by_its_stored_size() -> None:
    """As Nova compares Glance's ``size`` (images uploaded before virtual sizes were measured)."""
    old = images_pb2.Image(id="i-2", name="old", size_bytes=3 * GiB)
    assert "at least 3 GB" in shortfalls(TINY, old)[0]


def test_a_flavor_below_min_ram_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_flavor_fits(TINY, image(min_ram_mb=256), "flavor_id")
    [(field, why)] = info.value.violations
    assert field == "flavor_id"
    assert why == "flavor m1.tiny has 128 MB of RAM; image snap-1 needs at least 256 MB (min_ram_mb)"


def test_every_shortfall_is_said_at_once() -> None:
    disk, ram = shortfalls(TINY, image(min_disk_gb=2, min_ram_mb=256, virtual_size_bytes=5 * GiB))
    assert disk.endswith(f"needs at least 5 GB (min_disk_gb 2; a disk of {5 * GiB} bytes)") and "256 MB" in ram


def test_a_flavor_with_no_disk_is_not_checked_for_disk() -> None:
    """As Nova: disk_gb 0 boots at the image's own size."""
    whole = flavors_pb2.Flavor(id="f-0", name="zero", ram_mb=128, disk_gb=0)
    assert shortfalls(whole, image(min_disk_gb=20, virtual_size_bytes=40 * GiB)) == []
    assert len(shortfalls(whole, image(min_ram_mb=256))) == 1


def test_a_snapshot_needs_its_servers_flavor_disk_and_its_sources_ram() -> None:
    resized = servers_pb2.Server(id="s-1", image_id="i-0", resources=servers_pb2.ServerResources(disk_gb=20))
    source = images_pb2.Image(id="i-0", min_disk_gb=2, min_ram_mb=96, properties={"os_distro": "x"})
    assert snapshot_minimums(resized, source) == (20, 96)
    assert snapshot_minimums(resized, images_pb2.Image(min_disk_gb=40)) == (40, 0)  # the larger disk
    assert snapshot_minimums(resized, None) == (20, 0)  # the source deleted since
    snap = snapshot_image("snap-1", resized, source, "alice")
    assert (snap.min_disk_gb, snap.min_ram_mb, snap.virtual_size_bytes) == (20, 96, 0)  # measured at upload
    assert snap.properties["os_distro"] == "x"


def test_the_virtual_size_of_a_qcow2_is_its_headers() -> None:
    meter = DiskMeter()
    data = qcow2_header(20 * GiB) + b"\1" * 5000
    for n in range(0, len(data), 7):  # the header split across chunks
        meter.feed(data[n : n + 7])
    assert (meter.virtual_size, meter.total) == (20 * GiB, len(data))


def test_the_virtual_size_of_raw_bytes_is_their_length() -> None:
    meter = DiskMeter()
    for chunk in (b"\x55" * 300, b"\xaa" * 212):
        meter.feed(chunk)
    assert meter.virtual_size == 512
    short = DiskMeter()
    short.feed(b"QFI\xfb\0\0")  # the magic but no header: unknown (qemu-img on the compute judges it)
    assert short.virtual_size == 0


def test_a_header_that_is_no_qcow2_header_measures_unknown() -> None:
    huge = DiskMeter()
    huge.feed(b"QFI\xfb\0\0\0\3" + b"\0" * 16 + b"\xff" * 8)  # version 3, a size no flavor holds
    assert huge.virtual_size == 0
    garbage = DiskMeter()
    garbage.feed(b"QFI\xfb" + b"\x5a" * 1024)  # the e2e corrupt image: version 0x5a5a5a5a
    assert garbage.virtual_size == 0


def test_gb_for_rounds_up() -> None:
    assert [gb_for(n) for n in (0, 1, GiB, GiB + 1)] == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("min_disk_gb", "min_ram_mb", "bad"),
    [
        (-1, 0, "metadata.min_disk_gb"),
        (MIN_DISK_GB_MAX + 1, 0, "metadata.min_disk_gb"),
        (0, -1, "metadata.min_ram_mb"),
        (0, MIN_RAM_MB_MAX + 1, "metadata.min_ram_mb"),
    ],
)
def test_an_upload_sets_minimums_within_bounds(min_disk_gb: int, min_ram_mb: int, bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        upload.validate(images_pb2.Image(name="x", disk_format="raw", min_disk_gb=min_disk_gb, min_ram_mb=min_ram_mb))
    assert [field for field, _ in info.value.violations] == [bad]
    upload.validate(images_pb2.Image(name="x", disk_format="raw", min_disk_gb=MIN_DISK_GB_MAX,
                                     min_ram_mb=MIN_RAM_MB_MAX))  # fmt: skip

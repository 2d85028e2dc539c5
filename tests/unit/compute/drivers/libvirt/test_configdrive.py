"""The config drive: its file map, host names made from server names, and a real ISO read back."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from services.compute.drivers.base import DriverError, InstanceSpec
from services.compute.drivers.libvirt import configdrive
from services.compute.drivers.libvirt.configdrive import build_config_drive, config_drive_files, hostname_of

VOLUME_ID = slice(32808, 32840)  # the primary volume descriptor's volume identifier, space padded
USER_DATA = b"#!/bin/sh\necho hi\n\xff\xfe\x00 not utf-8\r\n"


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def spec(user_data: bytes = USER_DATA, name: str = "Web Server 1") -> InstanceSpec:
    return InstanceSpec(
        instance_id="0b6f2c7e-58d4-4d3a-9c1e-2f8a7b6c5d41",
        name=name,
        vcpus=1,
        ram_mb=128,
        disk_gb=1,
        image_id="img-1",
        project_id="proj-a",
        user_data=user_data,
        metadata={"role": "web", "tier": "front"},
        public_keys={"mykey": "ssh-ed25519 AAAA user@host"},
    )


def test_meta_data_json() -> None:
    files = config_drive_files(spec(), "web-server-1")
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta == {
        "uuid": "0b6f2c7e-58d4-4d3a-9c1e-2f8a7b6c5d41",
        "name": "Web Server 1",
        "hostname": "web-server-1",
        "launch_index": 0,
        "availability_zone": "",
        "project_id": "proj-a",
        "meta": {"role": "web", "tier": "front"},
        "public_keys": {"mykey": "ssh-ed25519 AAAA user@host"},
        "keys": [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAA user@host"}],
    }
    assert files["openstack/2012-08-10/meta_data.json"] == files["openstack/latest/meta_data.json"]


def test_meta_data_without_a_key_has_empty_key_fields() -> None:
    meta = json.loads(config_drive_files(replace(spec(), public_keys={}), "h")["openstack/latest/meta_data.json"])
    assert (meta["public_keys"], meta["keys"]) == ({}, [])


async def test_the_key_is_in_the_iso(tmp_path: Path) -> None:
    dest = tmp_path / "disk.config"
    await build_config_drive(spec(), dest)
    assert b'"public_keys": {"mykey": "ssh-ed25519 AAAA user@host"}' in dest.read_bytes()


def test_file_map_with_user_data_keeps_bytes_exactly() -> None:
    files = config_drive_files(spec(), "h")
    assert files["openstack/latest/user_data"] == USER_DATA
    assert files["openstack/2012-08-10/user_data"] == USER_DATA
    assert files["openstack/latest/vendor_data.json"] == b"{}"
    assert json.loads(files["openstack/latest/network_data.json"]) == {"links": [], "networks": [], "services": []}


def test_no_user_data_file_when_empty() -> None:
    files = config_drive_files(spec(user_data=b""), "h")
    assert sorted(files) == [
        "openstack/2012-08-10/meta_data.json",
        "openstack/latest/meta_data.json",
        "openstack/latest/network_data.json",
        "openstack/latest/vendor_data.json",
    ]


def test_meta_data_is_deterministic() -> None:
    assert config_drive_files(spec(), "h") == config_drive_files(spec(), "h")


@pytest.mark.parametrize(
    ("name", "hostname"),
    [
        ("web-1", "web-1"),
        ("Web Server 1", "web-server-1"),
        ("  ..web__1..  ", "web-1"),
        ('a<b>&c"d', "a-b-c-d"),
        ("café", "caf"),
        ("日本", "server"),
        ("", "server"),
        ("---", "server"),
        ("x" * 100, "x" * 63),
        ("a" * 62 + " b", "a" * 62),
        ("my.host.example", "my-host-example"),
    ],
)
def test_hostname_of(name: str, hostname: str) -> None:
    assert hostname_of(name) == hostname


async def test_build_config_drive_makes_a_labelled_iso(tmp_path: Path) -> None:
    dest = tmp_path / "disk.config"
    await build_config_drive(spec(), dest)
    iso = dest.read_bytes()
    assert iso[VOLUME_ID] == b"config-2".ljust(32)
    files = config_drive_files(spec(), hostname_of(spec().name))
    assert files["openstack/latest/meta_data.json"] in iso
    assert USER_DATA in iso
    assert names(tmp_path) == ["disk.config"]  # no staging dir, no .part


async def test_build_config_drive_replaces_an_old_drive(tmp_path: Path) -> None:
    dest = tmp_path / "disk.config"
    dest.write_bytes(b"old")
    await build_config_drive(spec(name="second"), dest)
    assert b'"name": "second"' in dest.read_bytes()


async def test_genisoimage_failure_is_a_driver_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "genisoimage"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'genisoimage: disk full' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(configdrive, "GENISOIMAGE", str(fake))
    dest = tmp_path / "out" / "disk.config"
    dest.parent.mkdir()
    with pytest.raises(DriverError, match="disk full"):
        await build_config_drive(spec(), dest)
    assert names(dest.parent) == []


async def test_missing_destination_directory_is_a_driver_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="cannot stage"):
        await build_config_drive(spec(), tmp_path / "nowhere" / "disk.config")

"""The OpenStack config drive: an ISO 9660 image labelled ``config-2`` that cloud-init reads."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from services.compute.drivers.base import DriverError, InstanceSpec
from services.compute.drivers.libvirt import process

GENISOIMAGE = "genisoimage"
VOLUME_LABEL = "config-2"
# Old cloud-init reads only this version; Nova writes it next to "latest".
METADATA_VERSIONS = ("2012-08-10", "latest")
_NOT_HOSTNAME = re.compile(r"[^a-z0-9-]+")
HOSTNAME_MAX = 63


def hostname_of(name: str) -> str:
    """An RFC 952/1123 host label made from a server name ("server" when nothing is left)."""
    label = _NOT_HOSTNAME.sub("-", name.lower()).strip("-")
    label = label[:HOSTNAME_MAX].rstrip("-")
    return label or "server"


def _meta_data(spec: InstanceSpec, hostname: str) -> bytes:
    doc = {
        "uuid": spec.instance_id,
        "name": spec.name,
        "hostname": hostname,
        "launch_index": 0,
        "availability_zone": "",
        "project_id": spec.project_id,
        "meta": dict(spec.metadata),
        "public_keys": dict(spec.public_keys),
        # Nova writes the same keys again in this form (cloud-init reads either).
        "keys": [{"name": name, "type": "ssh", "data": key} for name, key in sorted(spec.public_keys.items())],
    }
    return json.dumps(doc, sort_keys=True).encode()


def config_drive_files(spec: InstanceSpec, hostname: str) -> dict[str, bytes]:
    """The drive's files by path relative to its root."""
    meta_data = _meta_data(spec, hostname)
    files: dict[str, bytes] = {}
    for version in METADATA_VERSIONS:
        files[f"openstack/{version}/meta_data.json"] = meta_data
        if spec.user_data:
            files[f"openstack/{version}/user_data"] = bytes(spec.user_data)
    files["openstack/latest/vendor_data.json"] = b"{}"
    files["openstack/latest/network_data.json"] = json.dumps(
        {"links": [], "networks": [], "services": []}, sort_keys=True
    ).encode()
    return files


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _stage(dest: Path, files: dict[str, bytes]) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _write_tree(staging, files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


async def _make_iso(tree: Path, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    argv = [GENISOIMAGE, "-o", str(part), "-V", VOLUME_LABEL, "-r", "-J", "-quiet", "-input-charset", "utf-8"]
    try:
        await process.check_output(*argv, str(tree))
        await asyncio.to_thread(os.replace, part, dest)
    except BaseException as e:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        if isinstance(e, OSError):
            raise DriverError(f"config drive {dest}: {e}") from e
        raise


async def build_config_drive(spec: InstanceSpec, dest: Path) -> None:
    """Writes the config drive of ``spec`` to ``dest`` (whole or not at all); DriverError with
    genisoimage's complaint when it fails."""
    files = config_drive_files(spec, hostname_of(spec.name))
    try:
        tree = await asyncio.to_thread(_stage, dest, files)
    except OSError as e:
        raise DriverError(f"config drive for {spec.instance_id}: cannot stage files next to {dest}: {e}") from e
    try:
        await _make_iso(tree, dest)
    finally:
        await asyncio.to_thread(shutil.rmtree, tree, ignore_errors=True)

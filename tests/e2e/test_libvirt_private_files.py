"""Files private (issue 17) with real QEMU guests: the instance directories and the image cache are
0700 whatever the umask, and under the umask every stratus process runs with (077, set by
services/core/runner.py) a guest still boots from its 0600 overlay on a 0600 base image, reads its
0600 config drive (user data, SSH keys) and snapshots, leaving nothing that group or others may read."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.compute.drivers.base import InstanceSpec
from services.compute.drivers.libvirt.driver import LibvirtDriver
from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.core.private_files import PRIVATE_UMASK
from tests.e2e.conftest import GUEST
from tests.e2e.test_libvirt_driver import READY, console_shows
from tests.support import ssh_keys
from tests.support.file_images import FileImageService
from tests.support.modes import open_to_others

pytestmark = pytest.mark.asyncio(loop_scope="session")
USER_DATA = b"#cloud-config\npassword: hunter2\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def spec() -> InstanceSpec:
    return InstanceSpec(instance_id=str(uuid.uuid4()), name="private", image_id="tiny", user_data=USER_DATA,
                        public_keys={"laptop": ssh_keys.ED25519}, vcpus=1, ram_mb=128, disk_gb=1)  # fmt: skip


@pytest.fixture(params=[0o022, PRIVATE_UMASK], ids=["umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)


@pytest_asyncio.fixture(loop_scope="session")
async def private_driver(libvirtd: None, umask: int, tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    """A driver whose state dir is a fresh one (the launcher's would be 0700 too), with the guest's
    image and the snapshots it uploads outside it."""
    state_dir, outside = tmp_path / "state", tmp_path / "outside"
    outside.mkdir()
    images = FileImageService(upload_dir=outside)
    images.add("tiny", GUEST, "qcow2")
    drv = LibvirtDriver(LibvirtSettings(), f"e2e-private-{umask:o}", state_dir, images, shutdown_timeout_s=10.0)
    await drv.start(lambda _i, _p: None)
    yield drv
    for instance_id in await drv.list_instances():
        await drv.destroy(instance_id)
    await drv.close()


async def test_instance_dirs_and_the_image_cache_are_private(private_driver: LibvirtDriver, umask: int) -> None:
    guest = spec()
    await private_driver.spawn(guest)
    output = await console_shows(private_driver, guest.instance_id, READY)
    assert "hunter2" in output  # the guest read its config drive through the 0700 directories
    await private_driver.snapshot(guest.instance_id, f"snap-{umask:o}")
    files = private_driver.files(guest.instance_id)
    for directory in (private_driver.instances_path, private_driver.instances_path.parent, files.root,
                      private_driver.cache.root):  # fmt: skip
        assert mode(directory) == 0o700, directory
    if umask == PRIVATE_UMASK:  # how every stratus process runs: its files too
        for path in (files.disk, files.config_drive, files.console_log, private_driver.cache.root / "tiny"):
            assert await asyncio.to_thread(path.exists), path
        offenders = open_to_others(private_driver.instances_path.parent.parent)
        assert not offenders, "open to group or others:\n" + "\n".join(offenders)

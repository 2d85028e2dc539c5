"""End-to-end tests against the real libvirtd with the tiny Linux guest.

libvirt takes one event loop per process, so every test here runs on the session's loop.

They need what `make test` prepares first (`make libvirtd guest`); the fixtures run the same
scripts, which return at once when everything is there, so a test run alone works too.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.compute.drivers.libvirt.driver import LibvirtDriver
from services.compute.drivers.libvirt.settings import LibvirtSettings
from tests.support.file_images import FileImageService

ROOT = Path(__file__).resolve().parents[2]
GUEST = ROOT / "build" / "guest" / "tiny.qcow2"


@pytest.fixture(scope="session")
def libvirtd() -> None:
    """A running libvirtd and the built guest, or the test fails saying why (never a skip)."""
    for script in (["bash", "deploy/libvirtd.sh"], ["bash", "deploy/build-guest.sh", "build/guest"]):
        done = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{' '.join(script)} failed:\n{done.stdout}\n{done.stderr}"


@pytest_asyncio.fixture(loop_scope="session")
async def driver(libvirtd: None, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[LibvirtDriver]:
    """A driver for a host of its own (so tests never see each other's domains); every domain it
    owns is destroyed afterwards."""
    images = FileImageService(upload_dir=tmp_path)
    images.add("tiny", GUEST, "qcow2")
    host = f"e2e-{request.node.name[:40]}"
    drv = LibvirtDriver(LibvirtSettings(), host, tmp_path, images, shutdown_timeout_s=10.0)
    await drv.start(lambda _i, _p: None)
    yield drv
    for instance_id in await drv.list_instances():
        await drv.destroy(instance_id)
    await drv.close()

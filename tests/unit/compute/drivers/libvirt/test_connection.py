"""The libvirt connection runs every call through TimedCalls: a call libvirt does not answer in time
is a CallTimeout that degrades the driver's health; libvirt's own errors stay DriverErrors naming
the call. No libvirtd needed: the calls here are stand-ins for libvirt's blocking ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from services.compute.drivers.base import DriverError, ImageInfo, ImageService
from services.compute.drivers.libvirt.connection import Connection
from services.compute.drivers.libvirt.driver import LibvirtDriver
from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.compute.drivers.timed_calls import CallTimeout

URI = "test:///default"


@pytest.fixture
def libvirtd_hangs() -> Iterator[threading.Event]:
    """Set it to let the hung calls return."""
    released = threading.Event()
    yield released
    released.set()


async def test_a_call_libvirt_does_not_answer_times_out_and_degrades(libvirtd_hangs: threading.Event) -> None:
    lv = Connection(URI, workers=2, timeout_s=0.2)
    with pytest.raises(CallTimeout) as exc:
        await lv.call("reading the domain state", libvirtd_hangs.wait)
    assert str(exc.value) == f"libvirt at {URI} did not answer 'reading the domain state' within 0.2 s"
    assert lv.calls.health.reason == str(exc.value)
    assert lv.calls.stuck == 1


async def test_libvirt_errors_are_driver_errors_and_answers(libvirtd_hangs: threading.Event) -> None:
    lv = Connection(URI, workers=2, timeout_s=0.2)

    def refused() -> None:
        raise libvirt.libvirtError("Requested operation is not valid: domain is not running")

    with pytest.raises(DriverError, match=r"^pausing the domain: ") as exc:
        await lv.call("pausing the domain", refused)
    assert not isinstance(exc.value, CallTimeout)
    assert lv.calls.health.reason == ""


async def test_a_call_may_take_its_own_longer_timeout(libvirtd_hangs: threading.Event) -> None:
    lv = Connection(URI, workers=2, timeout_s=0.1)
    threading.Timer(0.3, libvirtd_hangs.set).start()
    assert await lv.call("saving the domain's memory", libvirtd_hangs.wait, 5.0, timeout_s=2.0) is True


class HungConnection:
    """An open connection whose libvirtd stopped answering."""

    def __init__(self, released: threading.Event) -> None:
        self.released = released

    def isAlive(self) -> bool:  # libvirt's name
        self.released.wait()
        return True


async def test_checking_the_connection_is_bounded_too(libvirtd_hangs: threading.Event) -> None:
    lv = Connection(URI, workers=2, timeout_s=0.2)
    lv._conn = HungConnection(libvirtd_hangs)  # type: ignore[assignment]
    with pytest.raises(CallTimeout, match="did not answer 'checking the connection'"):
        await lv.conn()
    await lv._lock.acquire()  # another caller is checking it: waiting for that is bounded as well
    try:
        with pytest.raises(CallTimeout, match="another call's check of the connection got no answer"):
            await lv.conn()
    finally:
        lv._lock.release()


class NoImages(ImageService):
    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        raise AssertionError("not used")

    async def upload(self, image_id: str, src: Path) -> None:
        raise AssertionError("not used")


def test_the_driver_gives_its_connection_the_call_timeout(tmp_path: Path) -> None:
    settings = LibvirtSettings(uri=URI, workers=3, save_timeout_s=30.0)
    driver = LibvirtDriver(settings, "c1", tmp_path, NoImages(), 5.0, call_timeout_s=45.0)
    assert (driver.lv.calls.timeout_s, driver.lv.calls.max_threads) == (45.0, 3)
    assert driver.health is driver.lv.calls.health
    assert driver.save_timeout_s == 45.0  # never shorter than any other call's

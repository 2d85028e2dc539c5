"""The virt drivers a compute can run, by the name ``--driver`` takes."""

from __future__ import annotations

from collections.abc import Callable

from services.compute.drivers.base import DriverError, HostInfo, InstanceNotFound, InstanceSpec, VirtDriver
from services.compute.drivers.fake import FakeDriver, parse_fake_host
from services.compute.settings import ComputeSettings

__all__ = [
    "DRIVERS",
    "DriverError",
    "HostInfo",
    "InstanceNotFound",
    "InstanceSpec",
    "VirtDriver",
    "check_driver_name",
    "load_driver",
]

DriverFactory = Callable[[ComputeSettings], VirtDriver]


def _fake(settings: ComputeSettings) -> VirtDriver:
    return FakeDriver(
        parse_fake_host(settings.fake_host),
        spawn_delay_s=settings.fake_spawn_delay_s,
        fail_spawn=settings.fake_fail_spawn,
    )


DRIVERS: dict[str, DriverFactory] = {"fake": _fake}

# Names users may expect that have no driver yet, with what to do instead.
NOT_BUILT: dict[str, str] = {
    "libvirt": "the libvirt driver is not built yet (a later issue); use --driver fake",
}


def check_driver_name(name: str) -> None:
    """ValueError, saying what to do instead, unless a driver of this name exists."""
    if name in NOT_BUILT:
        raise ValueError(NOT_BUILT[name])
    if name not in DRIVERS:
        raise ValueError(f"unknown virt driver {name!r}; known drivers: {', '.join(sorted(DRIVERS))}")


def load_driver(settings: ComputeSettings) -> VirtDriver:
    """The driver ``settings.driver`` names; ValueError for a name with no driver."""
    check_driver_name(settings.driver)
    return DRIVERS[settings.driver](settings)

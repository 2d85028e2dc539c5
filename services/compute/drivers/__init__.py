"""The virt drivers a compute can run, by the name ``--driver`` takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from services.compute.drivers.base import (
    DriverError,
    HostInfo,
    ImageService,
    InstanceNotFound,
    InstanceSpec,
    VirtDriver,
)
from services.compute.drivers.fake import FakeDriver, parse_fake_host

if TYPE_CHECKING:  # the compute's settings import this package to check the driver's name
    from services.compute.settings import ComputeSettings

__all__ = [
    "DRIVERS",
    "DriverError",
    "HostInfo",
    "ImageService",
    "InstanceNotFound",
    "InstanceSpec",
    "VirtDriver",
    "check_driver_name",
    "load_driver",
]

DriverFactory = Callable[["ComputeSettings", ImageService], VirtDriver]


def _fake(settings: ComputeSettings, images: ImageService) -> VirtDriver:
    return FakeDriver(
        parse_fake_host(settings.fake_host),
        images,
        spawn_delay_s=settings.fake_spawn_delay_s,
        fail_spawn=settings.fake_fail_spawn,
        domains_file=settings.fake_domains_dir / f"{settings.host}.json" if settings.fake_domains_dir else None,
        host=settings.host,
    )


def _libvirt(settings: ComputeSettings, images: ImageService) -> VirtDriver:
    from services.compute.drivers.libvirt.driver import LibvirtDriver  # imports libvirt-python

    return LibvirtDriver(settings.libvirt, settings.host, settings.state_dir, images, settings.shutdown_timeout_s)


DRIVERS: dict[str, DriverFactory] = {"fake": _fake, "libvirt": _libvirt}


def check_driver_name(name: str) -> None:
    """ValueError, saying what to do instead, unless a driver of this name exists."""
    if name not in DRIVERS:
        raise ValueError(f"unknown virt driver {name!r}; known drivers: {', '.join(sorted(DRIVERS))}")


def load_driver(settings: ComputeSettings, images: ImageService) -> VirtDriver:
    """The driver ``settings.driver`` names; ValueError for a name with no driver."""
    check_driver_name(settings.driver)
    return DRIVERS[settings.driver](settings, images)

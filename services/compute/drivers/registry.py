"""The virt drivers a compute can run, by the name ``--driver`` takes: an explicit table of each
driver's plugin (no driver registers itself on import), the names, and building the chosen one."""

from __future__ import annotations

from typing import Protocol

from services.compute.drivers.base import ImageService, VirtDriver
from services.compute.drivers.fake import plugin as fake
from services.compute.drivers.libvirt import plugin as libvirt
from services.compute.drivers.plugin import DriverPlugin


class DriverSettings(fake.FakeReads, libvirt.LibvirtReads, Protocol):
    """What any driver's factory may read, and the chosen driver's name (ComputeSettings has it all)."""

    @property
    def driver(self) -> str: ...


PLUGINS: tuple[DriverPlugin[DriverSettings], ...] = (fake.PLUGIN, libvirt.PLUGIN)
_BY_NAME = {p.name: p for p in PLUGINS}


def names() -> list[str]:
    """The known drivers' names, sorted."""
    return sorted(_BY_NAME)


def plugin(name: str) -> DriverPlugin[DriverSettings]:
    """The plugin of this name; ValueError, saying what to use instead, when there is none."""
    found = _BY_NAME.get(name)
    if found is None:
        raise ValueError(f"unknown virt driver {name!r}; known drivers: {', '.join(names())}")
    return found


def load_driver(settings: DriverSettings, images: ImageService) -> VirtDriver:
    """The driver ``settings.driver`` names; ValueError for a name with no driver."""
    return plugin(settings.driver).build(settings, images)

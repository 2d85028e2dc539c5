"""The libvirt driver's plugin: ``--driver libvirt``, built from its ``libvirt`` settings, the host
name, the state directory, the stop timeout and the timeout of every hypervisor call."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from services.compute.drivers.base import ImageService, VirtDriver
from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.compute.drivers.plugin import DriverPlugin


class LibvirtReads(Protocol):
    """What the libvirt driver's factory reads of the settings (ComputeSettings has it all)."""

    @property
    def host(self) -> str: ...
    @property
    def state_dir(self) -> Path: ...
    @property
    def shutdown_timeout_s(self) -> float: ...
    @property
    def hypervisor_call_timeout_s(self) -> float: ...
    @property
    def libvirt(self) -> LibvirtSettings: ...


def build(settings: LibvirtReads, images: ImageService) -> VirtDriver:
    # Not a circle: the driver module imports libvirt-python (a C binding, and libvirtd's client
    # library), which only a compute that runs this driver needs; every other process, the fake
    # driver and the settings check load without it.
    from services.compute.drivers.libvirt.driver import LibvirtDriver

    return LibvirtDriver(settings.libvirt, settings.host, settings.state_dir, images, settings.shutdown_timeout_s,
                         settings.hypervisor_call_timeout_s)  # fmt: skip


PLUGIN: DriverPlugin[LibvirtReads] = DriverPlugin("libvirt", build)

"""The fake driver's plugin: ``--driver fake``, built from the fake_* settings, the host name and the
timeout of every hypervisor call."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from services.compute.drivers.base import ImageService, VirtDriver
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.drivers.fake.host import parse_fake_host
from services.compute.drivers.plugin import DriverPlugin


class FakeReads(Protocol):
    """What the fake driver's factory reads of the settings (ComputeSettings has it all)."""

    @property
    def host(self) -> str: ...
    @property
    def fake_host(self) -> str: ...
    @property
    def fake_spawn_delay_s(self) -> float: ...
    @property
    def fake_fail_spawn(self) -> bool: ...
    @property
    def fake_domains_dir(self) -> Path | None: ...
    @property
    def fake_hang_file(self) -> Path | None: ...
    @property
    def hypervisor_call_timeout_s(self) -> float: ...


def build(settings: FakeReads, images: ImageService) -> VirtDriver:
    return FakeDriver(
        parse_fake_host(settings.fake_host),
        images,
        spawn_delay_s=settings.fake_spawn_delay_s,
        fail_spawn=settings.fake_fail_spawn,
        domains_file=settings.fake_domains_dir / f"{settings.host}.json" if settings.fake_domains_dir else None,
        host=settings.host,
        hang_file=settings.fake_hang_file,
        call_timeout_s=settings.hypervisor_call_timeout_s,
    )


PLUGIN: DriverPlugin[FakeReads] = DriverPlugin("fake", build)

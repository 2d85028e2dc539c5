from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.core.config import CommonSettings


class ComputeSettings(CommonSettings):
    binary: ClassVar[str] = "compute"

    driver: str = Field(default="fake", description="virt driver: fake (libvirt comes later)")
    # Size of a fake host: vcpus=V,ram_mb=R,disk_gb=D
    fake_host: str = "vcpus=16,ram_mb=32768,disk_gb=1000"
    # Seconds the fake driver takes to spawn; makes BUILD visible in tests.
    fake_spawn_delay_s: float = Field(default=0.0, ge=0)
    # Make every fake spawn fail (to exercise rescheduling).
    fake_fail_spawn: bool = False
    availability_zone: str = "nova"

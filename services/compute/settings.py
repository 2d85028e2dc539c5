from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.core.config import CommonSettings


class ComputeSettings(CommonSettings):
    model_config = SettingsConfigDict(**{**CommonSettings.model_config, "env_nested_delimiter": "__"})
    binary: ClassVar[str] = "compute"

    driver: str = Field(default="fake", description="virt driver: libvirt or fake")
    libvirt: LibvirtSettings = Field(default_factory=LibvirtSettings)
    # The stack's service token, for the api's internal ImageStore; default <state_dir>/service.token.
    service_token_file: Path | None = None
    # A stop asks the guest to shut down (ACPI) and destroys it after this long.
    shutdown_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    # How often the hypervisor is compared with the records; a domain no record places here (and
    # no operation of this compute holds) is removed once it has been seen so for orphan_grace_s.
    # A record names its host in the claim's own transaction, so the grace only covers a record
    # read a moment too early: short, so a copy left by a compute killed mid-build goes soon.
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    orphan_grace_s: float = Field(default=30.0, ge=0)
    # Size of a fake host: vcpus=V,ram_mb=R,disk_gb=D
    fake_host: str = "vcpus=16,ram_mb=32768,disk_gb=1000"
    # Seconds the fake driver takes to spawn; makes BUILD visible in tests.
    fake_spawn_delay_s: float = Field(default=0.0, ge=0)
    # Make every fake spawn fail (to exercise rescheduling).
    fake_fail_spawn: bool = False
    # Keep the fake driver's domains in <dir>/<host>.json: they outlive the compute process (as a
    # hypervisor's do) and a test can read them (services/compute/drivers/fake_domains.py).
    fake_domains_dir: Path | None = None
    availability_zone: str = "nova"
    # Held back from guests (the host's own needs); the scheduler subtracts them from the totals.
    reserved_host_vcpus: int = Field(default=0, ge=0)
    reserved_host_memory_mb: int = Field(default=0, ge=0)
    reserved_host_disk_gb: int = Field(default=0, ge=0)
    # Reported in the host's capabilities for the ImageProperties and Trusted filters.
    architecture: str = Field(default="x86_64", min_length=1)
    trusted: bool = False

    def service_token_path(self) -> Path:
        return self.service_token_file or self.state_dir / "service.token"

    @field_validator("driver")
    @classmethod
    def _check_driver(cls, value: str) -> str:
        """An unknown or unbuilt driver fails at start-up with what to use instead."""
        from services.compute.drivers import check_driver_name  # the drivers package imports settings

        check_driver_name(value)
        return value

    @field_validator("fake_host")
    @classmethod
    def _check_fake_host(cls, value: str) -> str:
        """A bad size fails at start-up, naming the bad part, whichever driver is chosen."""
        from services.compute.drivers.fake import parse_fake_host  # the drivers package imports settings

        parse_fake_host(value)
        return value

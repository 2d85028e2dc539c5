"""The compute's settings: its own, the libvirt driver's (nested as ``libvirt``) and the fake
driver's (flat ``fake_*``, inherited from FakeSettings), over every process's CommonSettings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.compute.drivers import registry
from services.compute.drivers.fake.settings import FakeSettings
from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.core.config import CommonSettings


# FakeSettings comes first in the bases so that its fields follow CommonSettings' (pydantic orders the
# fields from the most basic class down) and precede this class's own; its validator comes with them,
# and this class's model_config (env prefix, extra="forbid", ...) is the one applied to all.
class ComputeSettings(FakeSettings, CommonSettings):
    model_config = SettingsConfigDict(**{**CommonSettings.model_config, "env_nested_delimiter": "__"})
    binary: ClassVar[str] = "compute"

    driver: str = Field(default="fake", description="virt driver: libvirt or fake")
    libvirt: LibvirtSettings = Field(default_factory=LibvirtSettings)
    # The stack's service token, for the api's internal ImageStore; default <state_dir>/service.token.
    service_token_file: Path | None = None
    # A stop asks the guest to shut down (ACPI) and destroys it after this long.
    shutdown_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    # Every call to the hypervisor gives up after this long (CallTimeout) and marks the host degraded
    # in its capabilities (the scheduler places nothing there) until calls answer in time again.
    hypervisor_call_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # How often a cheap call checks that the hypervisor answers, so that a hang, and its end, are
    # noticed on a host with nothing else to do.
    hypervisor_check_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # How often the hypervisor is compared with the records; a domain no record places here (and
    # no operation of this compute holds) is removed once it has been seen so for orphan_grace_s.
    # A record names its host in the claim's own transaction, so the grace only covers a record
    # read a moment too early: short, so a copy left by a compute killed mid-build goes soon.
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    orphan_grace_s: float = Field(default=30.0, ge=0)
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
        registry.plugin(value)
        return value

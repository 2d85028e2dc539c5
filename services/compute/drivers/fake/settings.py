"""The fake driver's own settings: five flat keys (``fake_host``, ``fake_spawn_delay_s``,
``fake_fail_spawn``, ``fake_domains_dir``, ``fake_hang_file``; ``STRATUS_FAKE_*``, ``--set fake_...``,
the ``[compute]`` table). The compute's settings inherit them, so their names stay flat, beside the compute's own."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from services.compute.drivers.fake.host import parse_fake_host


class FakeSettings(BaseModel):
    """A mixin of ComputeSettings (it has no model_config of its own: the compute's applies)."""

    # Size of a fake host: vcpus=V,ram_mb=R,disk_gb=D
    fake_host: str = "vcpus=16,ram_mb=32768,disk_gb=1000"
    # Seconds the fake driver takes to spawn; makes BUILD visible in tests.
    fake_spawn_delay_s: float = Field(default=0.0, ge=0)
    # Make every fake spawn fail (to exercise rescheduling).
    fake_fail_spawn: bool = False
    # Keep the fake driver's domains in <dir>/<host>.json: they outlive the compute process (as a
    # hypervisor's do) and a test can read them (services/compute/drivers/fake/domains.py).
    fake_domains_dir: Path | None = None
    # While this file exists the fake hypervisor hangs: every call blocks until it is removed, so calls
    # time out (hypervisor_call_timeout_s) and the host turns degraded (services/compute/drivers/fake/driver.py).
    fake_hang_file: Path | None = None

    @field_validator("fake_host")
    @classmethod
    def _check_fake_host(cls, value: str) -> str:
        """A bad size fails at start-up, naming the bad part, whichever driver is chosen."""
        parse_fake_host(value)
        return value

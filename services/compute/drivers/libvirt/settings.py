"""The libvirt driver's own settings: the ``[compute.libvirt]`` table, or ``STRATUS_LIBVIRT__<KEY>``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

VIRT_TYPES = ("auto", "kvm", "qemu")


class LibvirtSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(default="qemu:///system", min_length=1, description="libvirt connection URI")
    # auto: KVM when the CPU offers it and a probe guest really runs under it, else QEMU's emulation.
    virt_type: str = Field(default="auto", pattern="^(auto|kvm|qemu)$")
    # Instance directories (disk overlay, config drive, console log); default <state_dir>/instances.
    instances_path: Path | None = None
    # Base images, one copy per host; default <state_dir>/image-cache.
    image_cache_path: Path | None = None
    # Unused base images are removed after this long.
    image_cache_max_age_s: float = Field(default=86400.0, ge=0)
    # Threads that run libvirt's blocking calls: at most this many at once, stuck ones included (a call
    # that timed out keeps its thread until libvirt answers it); with all of them stuck, calls are refused.
    workers: int = Field(default=8, ge=1, le=64)
    # Saving a guest's memory (suspend) or restoring it (resume) moves all of it: those calls get this
    # long instead of the compute's hypervisor_call_timeout_s.
    save_timeout_s: float = Field(default=600.0, gt=0, le=24 * 3600)
    # The console log served to users is the last this many bytes.
    console_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)

"""Where an instance's files live on the host: one directory per instance, per compute host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class InstanceFiles:
    root: Path

    @property
    def disk(self) -> Path:
        """The qcow2 overlay on the cached base image."""
        return self.root / "disk"

    @property
    def image_id(self) -> Path:
        """Names the base image the disk is an overlay on, so the cache keeps it."""
        return self.root / "image-id"

    @property
    def config_drive(self) -> Path:
        return self.root / "disk.config"

    @property
    def console_log(self) -> Path:
        return self.root / "console.log"

    @property
    def resize_disk(self) -> Path:
        """The disk as it was before a resize, kept until confirm (restored by revert)."""
        return self.root / "disk.resize-backup"

    @property
    def resize_xml(self) -> Path:
        """The domain definition as it was before a resize."""
        return self.root / "domain.resize-backup.xml"

    def snapshot(self, image_id: str) -> Path:
        return self.root / f"snapshot-{image_id}.qcow2"

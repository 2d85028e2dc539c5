from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.core.config import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class ApiSettings(CommonSettings):
    binary: ClassVar[str] = "api"

    port: int = Field(default=8774, ge=0, le=65535)
    # Bearer tokens (see services/core/tokens.py); default <state_dir>/tokens.json.
    tokens_file: Path | None = None
    # Uploaded image bytes; default <state_dir>/images.
    images_dir: Path | None = None
    # The largest image an upload (or a snapshot) may make.
    max_image_bytes: int = Field(default=64 * 1024**3, ge=1)
    # How often the bytes of uploads whose api died (and whose record went with its lease) are removed.
    image_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Hosts a build may try before the server goes to ERROR.
    max_build_attempts: int = Field(default=3, ge=1, le=20)
    # Deadline of the compute's BuildInstance call, which may download a big image first.
    build_timeout_s: float = Field(default=1800.0, gt=0)
    # Deadline of the compute's SnapshotInstance call, which copies a whole disk.
    snapshot_timeout_s: float = Field(default=1800.0, gt=0)
    # Seed flavors m1.tiny/small/medium and the image `tiny` when missing.
    seed: bool = True
    # What `tiny` is seeded from: the built Linux guest (deploy/build-guest.sh) when the file
    # exists, else a 1 MiB boot sector that only prints a line.
    seed_image_file: Path | None = REPO_ROOT / "build/guest/tiny.qcow2"

    def tokens_path(self) -> Path:
        return self.tokens_file or self.state_dir / "tokens.json"

    def images_path(self) -> Path:
        return self.images_dir or self.state_dir / "images"

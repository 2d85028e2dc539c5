from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from services.core.config import CommonSettings


class ApiSettings(CommonSettings):
    binary: ClassVar[str] = "api"

    port: int = Field(default=8774, ge=0, le=65535)
    # Bearer tokens (see services/core/tokens.py); default <state_dir>/tokens.json.
    tokens_file: Path | None = None
    # Uploaded image bytes; default <state_dir>/images.
    images_dir: Path | None = None
    # Hosts a build may try before the server goes to ERROR.
    max_build_attempts: int = Field(default=3, ge=1, le=20)
    # Seed flavors m1.tiny/small/medium and the image `tiny` when missing.
    seed: bool = True

    def tokens_path(self) -> Path:
        return self.tokens_file or self.state_dir / "tokens.json"

    def images_path(self) -> Path:
        return self.images_dir or self.state_dir / "images"

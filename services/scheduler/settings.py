from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.core.config import CommonSettings


class SchedulerSettings(CommonSettings):
    binary: ClassVar[str] = "scheduler"

    # Unclaimed alternates returned beside the chosen host.
    alternates: int = Field(default=2, ge=0, le=10)

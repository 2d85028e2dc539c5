"""The servicegroup's settings: the common ones only."""

from __future__ import annotations

from typing import ClassVar

from services.core.config import CommonSettings


class ServiceGroupSettings(CommonSettings):
    binary: ClassVar[str] = "servicegroup"

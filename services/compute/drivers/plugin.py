"""What a driver plugin declares: the name ``--driver`` takes, and how the driver is built from the
settings it reads (a Protocol each driver declares beside its factory) and the image service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.compute.drivers.base import ImageService, VirtDriver

# What the factory reads of the settings; contravariant: a plugin that reads less fits where more is given.
SettingsT_contra = TypeVar("SettingsT_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class DriverPlugin(Generic[SettingsT_contra]):
    name: str
    build: Callable[[SettingsT_contra, ImageService], VirtDriver]

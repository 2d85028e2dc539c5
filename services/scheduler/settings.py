"""The scheduler's settings: the process's own (``alternates``, ``options_file``, ``options_check_s``)
over the scheduler options (``SchedulerOptions``, options_model.py), which the watched options file
may override while it runs (options.py)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from services.core.config import CommonSettings
from services.scheduler.options import OptionsWatcher
from services.scheduler.options_model import SchedulerOptions


class SchedulerSettings(CommonSettings, SchedulerOptions):
    binary: ClassVar[str] = "scheduler"
    model_config = CommonSettings.model_config

    # Unclaimed alternates returned beside the chosen host.
    alternates: int = Field(default=2, ge=0, le=10)
    # A JSON object of scheduler options (the seed's scheduler_options), re-read when it changes.
    options_file: Path | None = None
    # How often the options file is checked for a change.
    options_check_s: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _options_file_is_good(self) -> SchedulerSettings:
        """A bad options file at start refuses to start (later, a bad edit keeps the last good)."""
        if self.options_file is not None:
            OptionsWatcher(self.option_values(), self.options_file)
        return self

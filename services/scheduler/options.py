"""The scheduler options file: a JSON object checked and merged over the settings' options, watched
while the scheduler runs, each good version built into a new ``EngineConfig`` (chains.py).

``OptionsWatcher`` checks the file's mtime and size about once a second. A change is parsed,
checked (unknown keys, bad values) and built into new chains before anything is swapped in; a bad
file keeps the last good options and logs why. The file's absence means "no overrides".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.core.supervise import cancel, spawn_supervised
from services.scheduler.chains import EngineConfig, engine_config
from services.scheduler.filters import FILTERS
from services.scheduler.options_model import SchedulerOptions
from services.scheduler.weighers import WEIGHERS

log = logging.getLogger(__name__)


def extra_option_keys() -> set[str]:
    """Option keys filters and weighers read beyond SchedulerOptions' own fields."""
    keys = {w.multiplier_option for w in WEIGHERS.values() if w.multiplier_option}
    for flt in FILTERS.values():
        keys.update(flt.option_keys)
    return keys


def merge_file(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (an options file's object) checked and merged over ``base``; ValueError says why."""
    fields = set(SchedulerOptions.model_fields)
    unknown = sorted(k for k in values if k not in fields and k not in extra_option_keys())
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}")
    try:
        given = {k: v for k, v in values.items() if k in fields}
        checked = SchedulerOptions.model_validate({**{k: base[k] for k in fields if k in base}, **given})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None
    extras = {k: v for k, v in {**base, **values}.items() if k not in fields}
    return {**extras, **checked.option_values()}


def read_options_file(path: Path) -> dict[str, Any]:
    """The file's JSON object; ValueError when it is not one."""
    try:
        values = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(f"must hold a JSON object, not {type(values).__name__}")
    return values


Signature = tuple[int, int] | None


def file_signature(path: Path) -> Signature:
    """(mtime_ns, size), or None when the file is absent."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


class OptionsWatcher:
    """Holds the current ``EngineConfig``; rebuilds it when the options file changes."""

    def __init__(
        self,
        base: Mapping[str, Any],
        path: Path | None = None,
        *,
        interval_s: float = 1.0,
        on_change: Callable[[EngineConfig], None] | None = None,
    ) -> None:
        self._base = dict(base)
        self.path = path
        self._interval_s = interval_s
        self._on_change = on_change
        self._signature: Signature = None
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""
        self.config = self._load()  # raises ValueError: a bad file at start refuses to start

    def _load(self) -> EngineConfig:
        if self.path is None:
            return engine_config(self._base)
        self._signature = file_signature(self.path)
        if self._signature is None:
            log.warning("scheduler options file %s does not exist (yet); using the settings", self.path)
            return engine_config(self._base)
        try:
            merged = merge_file(self._base, read_options_file(self.path))
            return engine_config(merged, source=f"settings + {self.path}")
        except (OSError, ValueError) as exc:
            raise ValueError(f"scheduler options file {self.path}: {exc}") from exc

    def check(self) -> bool:
        """Reloads the file if its mtime or size changed; True when new options took effect."""
        if self.path is None:
            return False
        signature = file_signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        generation = self.config.generation + 1
        try:
            if signature is None:
                config = engine_config(self._base, generation=generation)
                log.warning("scheduler options file %s was removed; back to the settings", self.path)
            else:
                merged = merge_file(self._base, read_options_file(self.path))
                config = engine_config(merged, source=f"settings + {self.path}", generation=generation)
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
            log.error("scheduler options file %s is bad, keeping the last good options: %s", self.path, exc)
            return False
        self.last_error = ""
        self.config = config
        log.info("scheduler options reloaded from %s (generation %d)", config.source, generation)
        if self._on_change is not None:
            self._on_change(config)
        return True

    async def start(self) -> None:
        if self.path is not None and self._task is None:
            self._task = spawn_supervised("scheduler-options", self._follow)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.check()

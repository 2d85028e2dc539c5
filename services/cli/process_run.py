"""Running one Stratus process: settings from flags, ``--set``, environment and file, then ``run_process``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from services.cli.pairs import parse_pairs
from services.core.config import CommonSettings, load_settings

Build = Callable[..., Any]


# Each process is imported only when it is run (``stratus server list`` loads none of them).
def _api() -> tuple[type[CommonSettings], Build]:
    from services.api.main import build
    from services.api.settings import ApiSettings

    return ApiSettings, build


def _scheduler() -> tuple[type[CommonSettings], Build]:
    from services.scheduler.main import build
    from services.scheduler.settings import SchedulerSettings

    return SchedulerSettings, build


def _compute() -> tuple[type[CommonSettings], Build]:
    from services.compute.main import build
    from services.compute.settings import ComputeSettings

    return ComputeSettings, build


def _servicegroup() -> tuple[type[CommonSettings], Build]:
    from services.servicegroup.main import build
    from services.servicegroup.settings import ServiceGroupSettings

    return ServiceGroupSettings, build


PROCESSES: dict[str, Callable[[], tuple[type[CommonSettings], Build]]] = {
    "api": _api,
    "scheduler": _scheduler,
    "compute": _compute,
    "servicegroup": _servicegroup,
}


def merge_flags(sets: list[str] | None, flags: dict[str, Any]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items (dashes in keys read as underscores) under the explicit flags."""
    try:
        values: dict[str, Any] = {k.replace("-", "_"): v for k, v in parse_pairs(sets or []).items()}
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--set'") from exc
    values.update({k: v for k, v in flags.items() if v is not None})
    return values


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``bad setting port: Input should be less than or equal to 65535``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "settings"
        lines.append(f"bad setting {where}: {err['msg']}")
    return lines


def load_or_exit(
    settings_class: type[CommonSettings], config_file: Path | None, flags: dict[str, Any]
) -> CommonSettings:
    try:
        return load_settings(settings_class, config_file, **flags)
    except ValidationError as exc:
        for line in describe_validation_error(exc):
            print(line, file=sys.stderr)
        raise typer.Exit(2) from exc
    except (OSError, ValueError) as exc:  # missing file, bad TOML, a non-table section
        print(f"bad config file: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc


def run(binary: str, config_file: Path | None, sets: list[str] | None, flags: dict[str, Any]) -> None:
    """The body of ``stratus <binary>``: exits 2 on bad settings, 1 when the process cannot start."""
    from services.core.registration import DuplicateService
    from services.core.runner import run_process

    settings_class, build = PROCESSES[binary]()
    settings = load_or_exit(settings_class, config_file, merge_flags(sets, flags))
    try:
        run_process(settings, build)
    except (ConnectionError, DuplicateService) as exc:
        print(f"error: {binary} {settings.host}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc

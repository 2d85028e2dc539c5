"""Running one Stratus process: settings from flags, ``--set``, environment and file, then ``run_process``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from services.core.cli.pairs import parse_pairs
from services.core.config import CommonSettings, load_settings

SETTINGS_CLASSES: dict[str, tuple[str, str]] = {
    "api": ("services.api.settings", "ApiSettings"),
    "scheduler": ("services.scheduler.settings", "SchedulerSettings"),
    "compute": ("services.compute.settings", "ComputeSettings"),
    "servicegroup": ("services.servicegroup.settings", "ServiceGroupSettings"),
}


def settings_class(binary: str) -> type[CommonSettings]:
    module_name, class_name = SETTINGS_CLASSES[binary]
    cls: type[CommonSettings] = getattr(importlib.import_module(module_name), class_name)
    return cls


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


def load_or_exit(binary: str, config_file: Path | None, flags: dict[str, Any]) -> CommonSettings:
    try:
        return load_settings(settings_class(binary), config_file, **flags)
    except ValidationError as exc:
        for line in describe_validation_error(exc):
            print(line, file=sys.stderr)
        raise typer.Exit(2) from exc
    except (OSError, ValueError) as exc:  # missing file, bad TOML, a non-table section
        print(f"bad config file: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc


def load_build(binary: str) -> Callable[..., Any]:
    """``services.<binary>.main.build``, imported only when that process is run."""
    build: Callable[..., Any] = importlib.import_module(f"services.{binary}.main").build
    return build


def run(binary: str, config_file: Path | None, sets: list[str] | None, flags: dict[str, Any]) -> None:
    """The body of ``stratus <binary>``: exits 2 on bad settings, 1 when the process cannot start."""
    from services.core.registration import DuplicateService
    from services.core.runner import run_process

    settings = load_or_exit(binary, config_file, merge_flags(sets, flags))
    build = load_build(binary)
    try:
        run_process(settings, build)
    except (ConnectionError, DuplicateService) as exc:
        print(f"error: {binary} {settings.host}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc

"""``stratus --version``: the installed package's version, read from its metadata only when asked for."""

from __future__ import annotations

from typing import Annotated

import typer

PACKAGE = "stratus"


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown (no package metadata: not installed)"


def print_version(value: bool) -> None:
    if value:
        print(f"{PACKAGE} {package_version()}")
        raise typer.Exit()


def root_options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options before any command."""

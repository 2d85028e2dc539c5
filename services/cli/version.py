"""The options before any command: ``stratus --version`` (the installed package's version, read from
its metadata only when asked for) and ``--ca-cert`` (as openstack's ``--os-cacert``)."""

from __future__ import annotations

import os
from pathlib import Path
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
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", metavar="PEM", show_default=False,
                     help="Speak TLS to the api, trusting this CA (default: $STRATUS_CA_CERT, else stack.json's "
                          "ca_cert)."),
    ] = None,
) -> None:
    """Options before any command."""
    if ca_cert is not None:  # every command's target resolution reads it from there
        os.environ["STRATUS_CA_CERT"] = str(ca_cert)

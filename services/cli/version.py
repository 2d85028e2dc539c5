"""The options before any command: ``stratus --version`` (the installed package's version, read from
its metadata only when asked for), ``--ca-cert`` (as openstack's ``--os-cacert``), and where the stack
is (``--api``, ``--token``, ``--state-dir``) and ``-f``, as each command takes them: ``stratus --token
T server list`` is ``stratus server list --token T``. A command's own option wins over the one before it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from services.cli import options
from services.cli.options import API_HELP, STATE_DIR_HELP, TOKEN_HELP
from services.cli.output import Format

PACKAGE = "stratus"
PROCESS_COMMANDS = ("api", "scheduler", "compute", "servicegroup")  # their --state-dir is their own


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
    ctx: typer.Context,
    show_version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    api: Annotated[
        str | None, typer.Option("--api", metavar="HOST:PORT", help=API_HELP, show_default=False)
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help=TOKEN_HELP, show_default=False)] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help=STATE_DIR_HELP + " `stratus up` keeps its stack there.", show_default=False),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", metavar="PEM", show_default=False,
                     help="Speak TLS to the api, trusting this CA (default: $STRATUS_CA_CERT, else stack.json's "
                          "ca_cert)."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("-f", "--format", help="The output of the commands that take -f.", show_default=False),
    ] = None,
) -> None:
    """Options before any command."""
    options.set_given(options.NOTHING)  # this command's, not the last one's in this process (tests)
    given = options.Given(api, token, state_dir, ca_cert, fmt.value if fmt else None)
    command = ctx.invoked_subcommand
    if command in PROCESS_COMMANDS and given.any_for_a_stack():
        ctx.fail(f"--api, --token, --state-dir, --ca-cert and -f go after `{command}`, whose options they are not")
    if command == "up":
        if (given.api, given.token, given.ca_cert, given.fmt) != (None, None, None, None):
            ctx.fail("`stratus up` takes only --state-dir before it: --api, --token, --ca-cert and -f are for "
                     "the commands that use a stack")  # fmt: skip
        if given.state_dir is not None:
            ctx.default_map = {"up": {"state_dir": str(given.state_dir)}}  # `up --state-dir` still wins
        return
    options.set_given(replace(given, quick_exit=command not in PROCESS_COMMANDS))
    ctx.call_on_close(lambda: options.set_given(replace(options.NOTHING, quick_exit=options.given().quick_exit)))

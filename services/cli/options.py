"""Options every user command takes: where the stack is. Each can also come before the command
(``stratus --token T server list`` as ``stratus server list --token T``); the command's own wins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

API_HELP = "The api (default: $STRATUS_API, else stack.json)."
TOKEN_HELP = "Bearer token (default: $STRATUS_TOKEN, else stack.json's, sent only to that stack's api)."
STATE_DIR_HELP = "Where stack.json is (default: $STRATUS_STATE_DIR, else ~/.local/state/stratus)."
ApiOpt = Annotated[
    str | None, typer.Option("--api", metavar="HOST:PORT", help=API_HELP, show_default=False)
]
TokenOpt = Annotated[str | None, typer.Option("--token", help=TOKEN_HELP, show_default=False)]
StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help=STATE_DIR_HELP, show_default=False)]
WaitTimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=0.1)]


@dataclass(frozen=True)
class Given:
    """The options given before the command (``stratus --api A --token T server list``)."""

    api: str | None = None
    token: str | None = None
    state_dir: Path | None = None
    ca_cert: Path | None = None
    fmt: str | None = None  # -f: a Format's value, for the commands that take -f
    quick_exit: bool = False  # a user command (not `up`, not a process): main() may end it at once

    def any_for_a_stack(self) -> bool:
        return any(v is not None for v in (self.api, self.token, self.state_dir, self.ca_cert, self.fmt))


NOTHING = Given()
_given: list[Given] = [NOTHING]  # set by the root callback for the one command being run, then reset


def given() -> Given:
    return _given[0]


def set_given(value: Given) -> None:
    _given[0] = value

"""Options every user command takes: where the stack is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api", metavar="HOST:PORT", help="The api (default: $STRATUS_API, else stack.json).", show_default=False
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token (default: $STRATUS_TOKEN, else stack.json's, sent only to that stack's api).",
        show_default=False,
    ),
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where stack.json is (default: $STRATUS_STATE_DIR, else ~/.local/state/stratus).",
        show_default=False,
    ),
]
WaitTimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=0.1)]

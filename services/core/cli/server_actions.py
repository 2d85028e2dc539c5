"""``stratus server start|stop|reboot|pause|...|resize|console``: the server actions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from services.core.cli import output
from services.core.cli.client import open_api
from services.core.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.core.cli.output import Format, FormatOpt
from services.core.cli.servers import IdArg, resolve_flavor, server_rows
from stratus.v1 import servers_pb2

# command -> (method, request class, help)
SIMPLE: dict[str, tuple[str, Any, str]] = {
    "start": ("StartServer", servers_pb2.StartServerRequest, "Power a stopped server on."),
    "stop": ("StopServer", servers_pb2.StopServerRequest, "Power a server off."),
    "pause": ("PauseServer", servers_pb2.PauseServerRequest, "Pause a server."),
    "unpause": ("UnpauseServer", servers_pb2.UnpauseServerRequest, "Unpause a server."),
    "suspend": ("SuspendServer", servers_pb2.SuspendServerRequest, "Suspend a server."),
    "resume": ("ResumeServer", servers_pb2.ResumeServerRequest, "Resume a suspended server."),
    "confirm-resize": ("ConfirmServerResize", servers_pb2.ConfirmServerResizeRequest, "Confirm a resize."),
    "revert-resize": ("RevertServerResize", servers_pb2.RevertServerResizeRequest, "Revert a resize."),
}


def call_and_show(
    method: str, request: Any, fmt: Format, api: str | None, token: str | None, state_dir: Path | None
) -> None:
    with open_api(api, token, state_dir) as client:
        server = client.call(getattr(client.servers, method), request)
    output.emit_one(fmt, server, server_rows)


def simple_action(method: str, request_cls: Any, doc: str) -> Callable[..., None]:
    def action(
        server_id: IdArg,
        fmt: FormatOpt = Format.table,
        api: ApiOpt = None,
        token: TokenOpt = None,
        state_dir: StateDirOpt = None,
    ) -> None:
        call_and_show(method, request_cls(id=server_id), fmt, api, token, state_dir)

    action.__doc__ = doc
    return action


def reboot(
    server_id: IdArg,
    hard: Annotated[bool, typer.Option("--hard", help="Power cycle instead of asking the guest.")] = False,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Reboot a server."""
    kind = servers_pb2.REBOOT_TYPE_HARD if hard else servers_pb2.REBOOT_TYPE_SOFT
    call_and_show("RebootServer", servers_pb2.RebootServerRequest(id=server_id, type=kind), fmt, api, token, state_dir)


def resize(
    server_id: IdArg,
    flavor: Annotated[str, typer.Option("--flavor", help="The new flavor's id or name.")],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Resize a server to another flavor (then confirm-resize or revert-resize)."""
    with open_api(api, token, state_dir) as client:
        request = servers_pb2.ResizeServerRequest(id=server_id, flavor_id=resolve_flavor(client, flavor))
        server = client.call(client.servers.ResizeServer, request)
    output.emit_one(fmt, server, server_rows)


def console(
    server_id: IdArg,
    lines: Annotated[int, typer.Option("--lines", help="Last lines to show (0: all).", min=0)] = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Print a server's serial console output."""
    request = servers_pb2.GetServerConsoleOutputRequest(id=server_id, lines=lines)
    with open_api(api, token, state_dir) as client:
        reply = client.call(client.servers.GetServerConsoleOutput, request)
    print(reply.output, end="" if reply.output.endswith("\n") else "\n")


def register(app: typer.Typer) -> None:
    for name, (method, request_cls, doc) in SIMPLE.items():
        app.command(name)(simple_action(method, request_cls, doc))
    app.command("reboot")(reboot)
    app.command("resize")(resize)
    app.command("console")(console)

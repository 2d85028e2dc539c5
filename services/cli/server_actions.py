"""``stratus server start|stop|reboot|pause|...|resize|console|snapshot``: the server actions.

With ``--wait`` an action follows the server until its task is done and prints it; exit 1 if the
action failed (the task ended with a fault, or the server went to ERROR)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer

from services.cli import output
from services.cli.client import Api, open_api
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt, WaitTimeoutOpt
from services.cli.output import Format, FormatOpt
from services.cli.server_lookup import resolve_server
from services.cli.servers import ERROR, IdArg, fault_text, resolve_flavor, server_rows
from services.cli.waiting import WaitTimeout, wait_for
from stratus.v1 import images_pb2, servers_pb2

WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait until it is done; exit 1 if it failed.")]
NO_TASK = servers_pb2.TASK_STATE_UNSPECIFIED
IMAGE_POLL_S = 0.5

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


def finish_action(api: Api, server: servers_pb2.Server, what: str, timeout: float, fmt: Format) -> None:
    """Waits until the server has no task (exit 0), or it failed: a fault or ERROR (exit 1)."""
    try:
        final = wait_for(api, server.id, lambda s: s is None or s.task_state == NO_TASK, timeout)
    except WaitTimeout as exc:
        task = output.enum_label(exc.last, "task_state").lower() if exc.last else "gone"
        output.err(f"error: {what} of server {server.id} is not done after {timeout:g}s (task {task})")
        raise typer.Exit(1) from None
    if final is None:
        output.err(f"error: server {server.id} was deleted during the {what}")
        raise typer.Exit(1)
    output.emit_one(fmt, final, server_rows)
    if final.status == ERROR or final.HasField("fault"):
        output.err(f"error: {what} of server {final.name} ({final.id}) failed: {fault_text(final) or 'no fault given'}")
        raise typer.Exit(1)


def call_and_show(
    what: str, method: str, request: Callable[..., Any], server: str, fmt: Format,
    target: tuple[str | None, str | None, Path | None], wait: bool = False, timeout: float = 600.0,
) -> None:  # fmt: skip
    """Calls ``method`` with ``request(id=...)`` for the server (an id or unique name), then shows it."""
    with open_api(*target) as client:
        result = client.call(getattr(client.servers, method), request(id=resolve_server(client, server)))
        if wait:
            finish_action(client, result, what, timeout, fmt)
            return
    output.emit_one(fmt, result, server_rows)


def simple_action(name: str, method: str, request_cls: Any, doc: str) -> Callable[..., None]:
    def action(
        server: IdArg,
        wait: WaitOpt = False,
        timeout: WaitTimeoutOpt = 600.0,
        fmt: FormatOpt = Format.table,
        api: ApiOpt = None,
        token: TokenOpt = None,
        state_dir: StateDirOpt = None,
    ) -> None:
        call_and_show(name, method, request_cls, server, fmt, (api, token, state_dir), wait, timeout)

    action.__doc__ = doc
    return action


def reboot(
    server: IdArg,
    hard: Annotated[bool, typer.Option("--hard", help="Power cycle instead of asking the guest.")] = False,
    wait: WaitOpt = False,
    timeout: WaitTimeoutOpt = 600.0,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Reboot a server."""
    kind = servers_pb2.REBOOT_TYPE_HARD if hard else servers_pb2.REBOOT_TYPE_SOFT
    request = partial(servers_pb2.RebootServerRequest, type=kind)
    call_and_show("reboot", "RebootServer", request, server, fmt, (api, token, state_dir), wait, timeout)


def resize(
    server: IdArg,
    flavor: Annotated[str, typer.Option("--flavor", help="The new flavor's id or name.")],
    wait: WaitOpt = False,
    timeout: WaitTimeoutOpt = 600.0,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Resize a server to another flavor (then confirm-resize or revert-resize)."""
    with open_api(api, token, state_dir) as client:
        sid, flavor_id = resolve_server(client, server), resolve_flavor(client, flavor)
        result = client.call(client.servers.ResizeServer, servers_pb2.ResizeServerRequest(id=sid, flavor_id=flavor_id))
        if wait:
            finish_action(client, result, "resize", timeout, fmt)
            return
    output.emit_one(fmt, result, server_rows)


def console(
    server: IdArg,
    lines: Annotated[int, typer.Option("--lines", help="Last lines to show (0: all).", min=0, max=10000)] = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Print a server's serial console output."""
    with open_api(api, token, state_dir) as client:
        request = servers_pb2.GetServerConsoleOutputRequest(id=resolve_server(client, server), lines=lines)
        reply = client.call(client.servers.GetServerConsoleOutput, request)
    print(reply.output, end="" if reply.output.endswith("\n") else "\n")


def snapshot(
    server: IdArg,
    name: Annotated[str, typer.Option("--name", help="The new image's name.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the image is ACTIVE; exit 1 if it failed.")] = False,
    timeout: WaitTimeoutOpt = 1800.0,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Save a server's disk as a new image (SAVING, then ACTIVE)."""
    with open_api(api, token, state_dir) as client:
        request = servers_pb2.SnapshotServerRequest(id=resolve_server(client, server), image_name=name)
        image: images_pb2.Image = client.call(client.servers.SnapshotServer, request)
        if wait:
            image = wait_for_image(client, image, timeout)
    from services.cli.images import image_rows  # the image commands' module, only for this one

    output.emit_one(fmt, image, image_rows)


def wait_for_image(api: Api, image: images_pb2.Image, timeout: float) -> images_pb2.Image:
    """Polls the image until ACTIVE, a line on stderr each time its status changes; gone means the
    snapshot failed (exit 1)."""
    start = time.monotonic()
    deadline = start + timeout
    shown = -1

    def show(image: images_pb2.Image) -> None:
        nonlocal shown
        if image.status != shown:
            shown = image.status
            status = output.enum_label(image, "status") or "UNKNOWN"
            output.err(f"{time.monotonic() - start:5.1f}s image {image.name} ({image.id}): {status}")

    show(image)
    while image.status != images_pb2.IMAGE_STATUS_ACTIVE:
        if time.monotonic() > deadline:
            output.err(f"error: image {image.id} is not ACTIVE after {timeout:g}s")
            raise typer.Exit(1)
        time.sleep(IMAGE_POLL_S)
        try:
            image = api.call(api.images.GetImage, images_pb2.GetImageRequest(id=image.id))
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            output.err(f"error: the snapshot failed: image {image.id} was removed (the api's log says why)")
            raise typer.Exit(1) from None
        show(image)
    return image


def register(app: typer.Typer) -> None:
    for name, (method, request_cls, doc) in SIMPLE.items():
        app.command(name)(simple_action(name, method, request_cls, doc))
    app.command("reboot")(reboot)
    app.command("resize")(resize)
    app.command("console")(console)
    app.command("snapshot")(snapshot)

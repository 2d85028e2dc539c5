"""``stratus server ...``: create, list, show and delete servers."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli import batch, output
from services.cli.client import Api, open_api
from services.cli.lookup import id_for, list_all
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt, WaitTimeoutOpt
from services.cli.output import Format, FormatOpt
from services.cli.pairs import pairs_option
from services.cli.server_groups import resolve_group
from services.cli.server_lookup import flavor_and_image_names, names_of, resolve_server, server_id
from services.cli.waiting import WaitTimeout, print_changes, wait_for
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

app = typer.Typer(help="Servers: the virtual machines of a project.", no_args_is_help=True)
IdArg = Annotated[str, typer.Argument(metavar="SERVER", help="Server id or name.")]
IdsArg = Annotated[list[str], typer.Argument(metavar="SERVER...", help="Server ids or names.")]
ACTIVE = servers_pb2.SERVER_STATUS_ACTIVE
ERROR = servers_pb2.SERVER_STATUS_ERROR
DELETED = servers_pb2.SERVER_STATUS_DELETED
USER_DATA_MAX = 64 * 1024  # the api's limit

STATUS_WORDS = tuple(
    v.name.removeprefix("SERVER_STATUS_") for v in servers_pb2.ServerStatus.DESCRIPTOR.values if v.number != 0
)


def server_columns(
    flavors: Mapping[str, str] | None = None, images: Mapping[str, str] | None = None, all_projects: bool = False
) -> list[output.Column]:
    """The list's columns: flavor and image by name where ``flavors``/``images`` know it, else by id."""
    flavor_names, image_names = flavors or {}, images or {}
    columns: list[output.Column] = [
        ("ID", lambda s: s.id),
        ("NAME", lambda s: s.name),
        ("STATUS", lambda s: output.enum_label(s, "status")),
        ("TASK", lambda s: output.enum_label(s, "task_state").lower()),
        ("POWER", lambda s: output.enum_label(s, "power_state")),
        ("HOST", lambda s: s.host),
        ("FLAVOR", lambda s: flavor_names.get(s.flavor_id, s.flavor_id)),
        ("IMAGE", lambda s: image_names.get(s.image_id, s.image_id)),
    ]
    return [*columns, ("PROJECT", lambda s: s.project_id)] if all_projects else columns


COLUMNS = server_columns()


def fault_text(server: servers_pb2.Server) -> str:
    if not server.HasField("fault"):
        return ""
    return ": ".join(part for part in (server.fault.code, server.fault.message) if part)


def server_rows(s: servers_pb2.Server, names: Mapping[str, str | None] | None = None) -> list[tuple[str, str]]:
    """A server's fields for ``show``; with ``names`` (``flavor_name``, ``image_name``: ``names_of``)
    its flavor's and image's names beside their ids."""
    rows = [("id", s.id), ("name", s.name), ("status", output.enum_label(s, "status"))]
    rows += [(f, output.enum_label(s, f)) for f in ("vm_state", "task_state", "power_state")]
    rows += [("host", s.host), ("availability_zone", s.availability_zone)]
    rows += [("flavor_id", s.flavor_id)]
    rows += [("flavor_name", names.get("flavor_name") or "")] if names is not None else []
    rows += [("image_id", s.image_id)]
    rows += [("image_name", names.get("image_name") or "")] if names is not None else []
    if s.HasField("resources"):
        r = s.resources
        rows.append(("resources", f"{r.vcpus} vCPU, {r.ram_mb} MiB RAM, {r.disk_gb} GB disk"))
    rows += [("project_id", s.project_id), ("user_id", s.user_id), ("metadata", output.mapping(s.metadata))]
    rows += [("scheduler_hints", output.mapping(s.scheduler_hints)), ("server_group_id", s.server_group_id)]
    rows += [("key_name", s.key_name)]
    rows += [("user_data", f"{len(s.user_data)} bytes" if s.user_data else "")]
    rows += [("fault", fault_text(s))]
    rows += [("created_at", output.timestamp(s.created_at)), ("updated_at", output.timestamp(s.updated_at))]
    return rows


def resolve_flavor(api: Api, flavor: str) -> str:
    """A flavor id for an id or a name."""
    flavors = list_all(api, api.flavors.ListFlavors, flavors_pb2.ListFlavorsRequest(), "flavors")
    return id_for(flavors, flavor, "flavor")


def resolve_image(api: Api, image: str) -> str:
    """An image id for an id or a name, as the api resolves it (your project's images first, then
    those shared with you, then the public ones): a list of all would find another tier's namesakes."""
    found: images_pb2.Image = api.call(api.images.GetImage, images_pb2.GetImageRequest(id=image))
    return found.id


def finish_build(api: Api, server: servers_pb2.Server, timeout: float, fmt: Format) -> None:
    """Waits for ACTIVE (exit 0) or ERROR (the fault, exit 1)."""
    try:
        final = wait_for(api, server.id, lambda s: s is None or s.status in (ACTIVE, ERROR), timeout)
    except WaitTimeout as exc:
        now = output.enum_label(exc.last, "status") if exc.last else "gone"
        output.err(f"error: server {server.id} is not ACTIVE after {timeout:g}s (status {now})")
        raise typer.Exit(1) from None
    if final is None:
        output.err(f"error: server {server.id} was deleted while it was building")
        raise typer.Exit(1)
    output.emit_one(fmt, final, server_rows)
    if final.status == ERROR:
        output.err(f"error: server {final.name} ({final.id}) went to ERROR: {fault_text(final) or 'no fault given'}")
        raise typer.Exit(1)


def read_user_data(source: str, limit: int = USER_DATA_MAX) -> bytes:
    """The bytes of FILE (``-``: stdin), refused (exit 2) past the api's limit without reading on."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).open("rb") as fh:
                data = fh.read(limit + 1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}", param_hint="--user-data") from None
    if len(data) > limit:
        raise typer.BadParameter(f"{source} is over {limit} bytes, the most a server takes", param_hint="--user-data")
    return data


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Server name.")],
    flavor: Annotated[str, typer.Option("--flavor", help="Flavor id or name.")],
    image: Annotated[str, typer.Option("--image", help="Image id or name.")],
    az: Annotated[str | None, typer.Option("--az", help="Availability zone.", show_default=False)] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", metavar="KEY=VALUE", help="Metadata (repeatable).")
    ] = None,
    hint: Annotated[
        list[str] | None, typer.Option("--hint", metavar="KEY=VALUE", help="Scheduler hint (repeatable).")
    ] = None,
    group: Annotated[str | None, typer.Option("--group", help="Server group id or name.", show_default=False)] = None,
    key_name: Annotated[
        str | None, typer.Option("--key-name", help="Your keypair, given to the guest.", show_default=False)
    ] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Makes the create idempotent.", show_default=False)
    ] = None,
    user_data: Annotated[
        str | None,
        typer.Option(
            "--user-data", metavar="FILE", help="Given to the guest (at most 64 KiB); - for stdin.", show_default=False
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the server until ACTIVE or ERROR.")] = False,
    timeout: WaitTimeoutOpt = 600.0,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create a server; with --wait, exit 0 once ACTIVE and 1 on ERROR."""
    metadata, hints = pairs_option(meta, "--meta"), pairs_option(hint, "--hint")
    data = read_user_data(user_data) if user_data is not None else b""
    with open_api(api, token, state_dir) as client:
        flavor_id, image_id = resolve_flavor(client, flavor), resolve_image(client, image)
        spec = servers_pb2.Server(name=name, flavor_id=flavor_id, image_id=image_id, availability_zone=az or "")
        spec.metadata.update(metadata)
        spec.scheduler_hints.update(hints)
        spec.server_group_id = resolve_group(client, group) if group else ""
        spec.key_name = key_name or ""
        spec.user_data = data
        request = servers_pb2.CreateServerRequest(server=spec, request_id=request_id or "")
        server: servers_pb2.Server = client.call(client.servers.CreateServer, request)
        if wait:
            finish_build(client, server, timeout, fmt)
            return
    output.emit_one(fmt, server, server_rows)


def status_word(value: str | None) -> str | None:
    """``--status``: one of the api's status words (any case); anything else is a usage error."""
    if value is None:
        return None
    if value.upper() not in STATUS_WORDS:
        raise typer.BadParameter(f"unknown status {value!r}; one of: {', '.join(STATUS_WORDS)}")
    return value.upper()


def shows_names(fmt: Format, fields: tuple[str, str] = ("flavor", "image")) -> bool:
    """Whether the output has the flavor's or image's name: the FLAVOR or IMAGE column of a list's
    table (``fields``; ``flavor_name`` and ``image_name`` for a show's), or json's and yaml's
    ``flavor_name`` and ``image_name``, unless ``-c`` leaves them out."""
    chosen = {output.column_key(name) for name in output.selected_columns()}
    wanted = set(fields) if fmt in (Format.table, Format.value) else set(NAME_FIELDS)
    return not chosen or bool(chosen & wanted)


NAME_FIELDS = ("flavor_name", "image_name")


def name_fields(flavors: Mapping[str, str], images: Mapping[str, str]) -> output.Extra:
    """What json and yaml add to a server: its flavor's and image's names (null where unknown)."""

    def extra(s: servers_pb2.Server) -> dict[str, str | None]:
        return {"flavor_name": flavors.get(s.flavor_id), "image_name": images.get(s.image_id)}

    return extra


@app.command("list")
def list_servers(
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project's servers, with a PROJECT column (admin).")
    ] = False,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", callback=status_word, help="Only servers in this status, e.g. ACTIVE.", show_default=False
        ),
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", metavar="EXPR", help="e.g. 'status = ACTIVE'.", show_default=False)
    ] = None,
    fmt: FormatOpt = Format.table,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Then print each change to the project's servers (every project's with "
            "--all-projects) from the list's revision on, none lost or repeated; Ctrl-C stops.",
        ),
    ] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List servers (every page), with their flavor's and image's names."""
    terms = [term for term in (filter_, f"status={status}" if status else None) if term]
    request = servers_pb2.ListServersRequest(all_projects=all_projects, filter=" AND ".join(terms))
    with open_api(api, token, state_dir) as client:
        if watch:
            flavors, images = flavor_and_image_names(client) if shows_names(fmt) else ({}, {})
            columns = server_columns(flavors, images, all_projects)
            print_changes(client, request, fmt, columns, name_fields(flavors, images))
            return
        servers = list_all(client, client.servers.ListServers, request, "servers")
        flavors, images = flavor_and_image_names(client) if shows_names(fmt) else ({}, {})
    output.emit_list(fmt, server_columns(flavors, images, all_projects), servers, extra=name_fields(flavors, images))


@app.command("show")
def show(
    server: IdArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one server (by id or unique name), with its flavor's and image's names."""
    with open_api(api, token, state_dir) as client:
        request = servers_pb2.GetServerRequest(id=resolve_server(client, server))
        found = client.call(client.servers.GetServer, request)
        names = names_of(client, found) if shows_names(fmt, NAME_FIELDS) else {}
    named = {field: names.get(field) for field in NAME_FIELDS}  # None: unknown
    output.emit_one(fmt, found, lambda s: server_rows(s, names), extra=lambda _: named)


@app.command("delete")
def delete(
    servers: IdsArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the servers are gone.")] = False,
    timeout: WaitTimeoutOpt = 600.0,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete servers (by id or unique name); with --wait, return once they are gone. Exit 1 if any failed."""
    with open_api(api, token, state_dir) as client:
        outcome = batch.delete_each(
            "server", servers, lambda wanted: server_id(client, wanted),
            lambda sid: client.call(client.servers.DeleteServer, servers_pb2.DeleteServerRequest(id=sid)),
        )  # fmt: skip
        if wait:
            for sid, _ in outcome.done:
                wait_gone(client, sid, timeout)
    if fmt in (Format.json, Format.yaml):
        deleted = [server for _, server in outcome.done]
        if len(servers) == 1 and deleted:
            output.emit_one(fmt, deleted[0], server_rows)
        else:
            output.emit_list(fmt, COLUMNS, deleted)
    else:
        for sid, _ in outcome.done:
            print(f"server {sid} {'deleted' if wait else 'is being deleted'}")
    batch.exit_if_failed("server", len(servers), outcome)


def wait_gone(client: Api, server_id: str, timeout: float) -> None:
    def gone(s: Any) -> bool:
        return s is None or s.status == DELETED

    try:
        wait_for(client, server_id, gone, timeout)
    except WaitTimeout:
        output.err(f"error: server {server_id} is still there after {timeout:g}s")
        raise typer.Exit(1) from None

"""``stratus quota ...``: how much of the cloud a project may hold, and how much it holds."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import output
from services.cli.client import open_api
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from stratus.v1 import quotas_pb2

app = typer.Typer(help="Quotas: limits and usage per project.", no_args_is_help=True)
RESOURCES = ("instances", "cores", "ram_mb", "images", "image_bytes", "server_groups", "server_group_members",
             "keypairs")  # fmt: skip
Reply = quotas_pb2.GetQuotaSetResponse | quotas_pb2.UpdateQuotaSetResponse


def limit_text(limit: int) -> str:
    return "unlimited" if limit == -1 else str(limit)


def quota_rows(reply: Reply) -> list[tuple[str, str]]:
    """``instances  3 of 10``; server_group_members counts the largest group."""
    rows = [("project_id", reply.project_id)]
    for resource in RESOURCES:
        used, limit = getattr(reply.usage, resource), getattr(reply.limits, resource)
        rows.append((resource, f"{used} of {limit_text(limit)}"))
    return rows


def limit_option(what: str) -> object:
    return typer.Option(f"--{what.replace('_', '-')}", min=-1, help=f"Limit of {what} (-1: unlimited).",
                        show_default=False)  # fmt: skip


Limit = int | None


@app.command("show")
def show(
    project: Annotated[str, typer.Argument(help="Project id (default: the token's own).", show_default=False)] = "",
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show a project's limits and usage (another project's: admin)."""
    with open_api(api, token, state_dir) as client:
        reply = client.call(client.quotas.GetQuotaSet, quotas_pb2.GetQuotaSetRequest(project_id=project))
    output.emit_one(fmt, reply, quota_rows)


@app.command("set")
def set_quota(
    project: Annotated[str, typer.Argument(help="Project id.")],
    instances: Annotated[Limit, limit_option("instances")] = None,
    cores: Annotated[Limit, limit_option("cores")] = None,
    ram_mb: Annotated[Limit, limit_option("ram_mb")] = None,
    images: Annotated[Limit, limit_option("images")] = None,
    image_bytes: Annotated[Limit, limit_option("image_bytes")] = None,
    server_groups: Annotated[Limit, limit_option("server_groups")] = None,
    server_group_members: Annotated[Limit, limit_option("server_group_members")] = None,
    keypairs: Annotated[Limit, limit_option("keypairs")] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Set some of a project's limits (admin); the others stay. Below the usage blocks new use only."""
    given = {
        "instances": instances, "cores": cores, "ram_mb": ram_mb, "images": images, "image_bytes": image_bytes,
        "server_groups": server_groups, "server_group_members": server_group_members, "keypairs": keypairs,
    }  # fmt: skip
    limits = {resource: value for resource, value in given.items() if value is not None}
    if not limits:
        output.err(f"error: give at least one limit: {', '.join('--' + r.replace('_', '-') for r in RESOURCES)}")
        raise typer.Exit(2)
    request = quotas_pb2.UpdateQuotaSetRequest(project_id=project, quota_set=quotas_pb2.QuotaSet(**limits))
    with open_api(api, token, state_dir) as client:
        reply = client.call(client.quotas.UpdateQuotaSet, request)
    output.emit_one(fmt, reply, quota_rows)

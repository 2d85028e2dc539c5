"""``stratus server-group ...``: where a project's servers land relative to each other."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from services.cli import batch, output
from services.cli.client import Api, open_api
from services.cli.lookup import id_for, list_all, resolve_id
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from stratus.v1 import servergroups_pb2

app = typer.Typer(help="Server groups: affinity and anti-affinity between servers.", no_args_is_help=True)
IdArg = Annotated[str, typer.Argument(metavar="ID", help="Server group id or name.")]
P = servergroups_pb2.ServerGroupPolicy


class PolicyName(StrEnum):
    affinity = "affinity"
    anti_affinity = "anti-affinity"
    soft_affinity = "soft-affinity"
    soft_anti_affinity = "soft-anti-affinity"


POLICIES: dict[PolicyName, int] = {
    PolicyName.affinity: P.SERVER_GROUP_POLICY_AFFINITY,
    PolicyName.anti_affinity: P.SERVER_GROUP_POLICY_ANTI_AFFINITY,
    PolicyName.soft_affinity: P.SERVER_GROUP_POLICY_SOFT_AFFINITY,
    PolicyName.soft_anti_affinity: P.SERVER_GROUP_POLICY_SOFT_ANTI_AFFINITY,
}


def policy_label(group: servergroups_pb2.ServerGroup) -> str:
    return output.enum_label(group, "policy").lower().replace("_", "-")


def rules_text(group: servergroups_pb2.ServerGroup) -> str:
    return f"max_server_per_host={group.rules.max_server_per_host}" if group.HasField("rules") else ""


COLUMNS: list[output.Column] = [
    ("ID", lambda g: g.id),
    ("NAME", lambda g: g.name),
    ("POLICY", policy_label),
    ("RULES", rules_text),
    ("MEMBERS", lambda g: str(len(g.members))),
]
ALL_PROJECTS_COLUMNS: list[output.Column] = [*COLUMNS, ("PROJECT", lambda g: g.project_id)]


def group_rows(g: servergroups_pb2.ServerGroup) -> list[tuple[str, str]]:
    rows = [("id", g.id), ("name", g.name), ("policy", policy_label(g)), ("rules", rules_text(g))]
    rows += [("members", ", ".join(g.members)), ("project_id", g.project_id), ("user_id", g.user_id)]
    return [*rows, ("created_at", output.timestamp(g.created_at))]


def project_groups(api: Api) -> list[servergroups_pb2.ServerGroup]:
    """The caller's project's groups."""
    request = servergroups_pb2.ListServerGroupsRequest()
    return list_all(api, api.server_groups.ListServerGroups, request, "server_groups")


def resolve_group(api: Api, wanted: str) -> str:
    """A group id for an id or a unique name (the caller's project); ambiguous: exit 1."""
    return id_for(project_groups(api), wanted, "server group")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Group name.")],
    policy: Annotated[PolicyName, typer.Option("--policy", help="How members are placed.")],
    max_per_host: Annotated[
        int | None,
        typer.Option("--max-per-host", min=1, help="anti-affinity: members per host (default 1).", show_default=False),
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create a server group; pass its id to `server create --group`."""
    group = servergroups_pb2.ServerGroup(name=name, policy=POLICIES[policy])  # type: ignore[arg-type]
    if max_per_host is not None:
        group.rules.max_server_per_host = max_per_host
    with open_api(api, token, state_dir) as client:
        request = servergroups_pb2.CreateServerGroupRequest(server_group=group)
        created = client.call(client.server_groups.CreateServerGroup, request)
    output.emit_one(fmt, created, group_rows)


@app.command("list")
def list_groups(
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project's groups, with a PROJECT column (admin).")
    ] = False,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List server groups (every page)."""
    request = servergroups_pb2.ListServerGroupsRequest(all_projects=all_projects)
    with open_api(api, token, state_dir) as client:
        groups = list_all(client, client.server_groups.ListServerGroups, request, "server_groups")
    output.emit_list(fmt, ALL_PROJECTS_COLUMNS if all_projects else COLUMNS, groups)


@app.command("show")
def show(
    group: IdArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one server group with its members."""
    with open_api(api, token, state_dir) as client:
        request = servergroups_pb2.GetServerGroupRequest(id=resolve_group(client, group))
        found = client.call(client.server_groups.GetServerGroup, request)
    output.emit_one(fmt, found, group_rows)


@app.command("delete")
def delete(
    groups: Annotated[list[str], typer.Argument(metavar="GROUP...", help="Server group ids or names.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete server groups (each refused while it has members); exit 1 if any could not be."""
    with open_api(api, token, state_dir) as client:
        known = project_groups(client)
        outcome = batch.delete_each(
            "server group", groups, lambda wanted: resolve_id(known, wanted, "server group"),
            lambda gid: client.call(client.server_groups.DeleteServerGroup,
                                    servergroups_pb2.DeleteServerGroupRequest(id=gid)),
        )  # fmt: skip
    for group_id, _ in outcome.done:
        print(f"server group {group_id} deleted")
    batch.exit_if_failed("server group", len(groups), outcome)

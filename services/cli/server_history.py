"""``stratus server actions SERVER``: what was done to a server (Nova's ``server event list``),
newest first; ``--steps`` lists every action's steps (schedule, spawn on a host, ...) with their
hosts and errors; ``-f json|yaml`` prints the actions with their steps."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import output
from services.cli.client import open_api
from services.cli.lookup import list_all
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from services.cli.server_lookup import resolve_server
from services.cli.servers import IdArg
from stratus.v1 import servers_pb2

Action = servers_pb2.ServerAction
Event = servers_pb2.ServerActionEvent
RUNNING = servers_pb2.ServerActionResult.SERVER_ACTION_RESULT_RUNNING

ACTION_COLUMNS: list[output.Column] = [
    ("ACTION", lambda a: a.action),
    ("REQUEST ID", lambda a: a.request_id),
    ("USER", lambda a: a.user_id),
    ("START", lambda a: output.timestamp(a.start_time)),
    ("FINISH", lambda a: output.timestamp(a.finish_time)),
    ("RESULT", lambda a: output.enum_label(a, "result")),
    ("MESSAGE", lambda a: a.message or running_note(a)),
]
# one row per step: (its action, the step)
STEP_COLUMNS: list[output.Column] = [
    ("ACTION", lambda row: row[0].action),
    ("REQUEST ID", lambda row: row[0].request_id),
    ("STEP", lambda row: row[1].name),
    ("HOST", lambda row: row[1].host),
    ("START", lambda row: output.timestamp(row[1].start_time)),
    ("FINISH", lambda row: output.timestamp(row[1].finish_time)),
    ("RESULT", lambda row: output.enum_label(row[1], "result")),
    ("MESSAGE", lambda row: row[1].message),
]


def running_note(action: Action) -> str:
    """For an action under way: when it gives up if it has not finished."""
    if action.result != RUNNING or not action.HasField("deadline"):
        return ""
    return f"gives up at {output.timestamp(action.deadline)}"


def step_rows(actions: list[Action]) -> list[tuple[Action, Event]]:
    """Each action's steps in the order they ran, the newest action first."""
    return [(action, event) for action in actions for event in action.events]


def actions(
    server: IdArg,
    steps: Annotated[bool, typer.Option("--steps", help="One row per step, with its host and error.")] = False,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List what was done to a server, newest first (a deleted server's id too, for a while)."""
    with open_api(api, token, state_dir) as client:
        request = servers_pb2.ListServerActionsRequest(id=resolve_server(client, server))
        found: list[Action] = list_all(client, client.servers.ListServerActions, request, "actions")
    if not steps or fmt in (Format.json, Format.yaml):
        output.emit_list(fmt, ACTION_COLUMNS, found)
        return
    rows = step_rows(found)
    wanted = output.selected_columns()
    columns = [STEP_COLUMNS[i] for i in output.pick(wanted, [h for h, _ in STEP_COLUMNS])] if wanted else STEP_COLUMNS
    if fmt is Format.value:
        output.print_lines(" ".join(get(row) for _, get in columns) for row in rows)
    else:
        output.print_table(columns, rows)


def register(app: typer.Typer) -> None:
    app.command("actions")(actions)

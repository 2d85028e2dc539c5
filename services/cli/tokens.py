"""``stratus token ...``: bearer tokens with roles and an expiry (admin)."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from google.protobuf import duration_pb2

from services.cli import output
from services.cli.client import open_api
from services.cli.lookup import list_all
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from stratus.v1 import tokens_pb2, tokens_pb2_grpc

app = typer.Typer(help="Tokens: bearer tokens with roles and an expiry (admin).", no_args_is_help=True)

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
TTL = re.compile(r"^(\d{1,9})([smhd]?)$")

COLUMNS: list[output.Column] = [
    ("ID", lambda t: t.id),
    ("PROJECT", lambda t: t.project_id),
    ("USER", lambda t: t.user_id),
    ("ROLES", lambda t: ",".join(t.roles)),
    ("EXPIRES_AT", lambda t: output.timestamp(t.expires_at)),
    ("REVOKED_AT", lambda t: output.timestamp(t.revoked_at)),
    ("CREATED_BY", lambda t: t.created_by),
]


def token_rows(t: tokens_pb2.Token) -> list[tuple[str, str]]:
    return [(header.lower(), get(t)) for header, get in COLUMNS]


def created_rows(r: tokens_pb2.CreateTokenResponse) -> list[tuple[str, str]]:
    return [("token", r.token), ("id", r.id), ("project", r.project_id), ("user", r.user_id),
            ("roles", ",".join(r.roles)), ("expires_at", output.timestamp(r.expires_at))]  # fmt: skip


def parse_ttl(value: str | None) -> duration_pb2.Duration | None:
    """``3600``, ``45s``, ``90m``, ``24h``, ``7d`` -> a Duration; None: the api's default (24 h)."""
    if value is None:
        return None
    match = TTL.match(value.strip())
    if not match:
        raise typer.BadParameter("give seconds, or a number with s, m, h or d (90m, 24h, 7d)", param_hint="'--ttl'")
    return duration_pb2.Duration(seconds=int(match.group(1)) * UNITS[match.group(2)])


@app.command("create")
def create(
    project: Annotated[str, typer.Option("--project", metavar="PROJECT", help="The project the token acts in.")],
    user: Annotated[str, typer.Option("--user", metavar="USER", help="The user it acts as.")],
    role: Annotated[list[str], typer.Option("--role", metavar="ROLE", help="reader, member or admin (repeatable).")],
    ttl: Annotated[
        str | None,
        typer.Option("--ttl", metavar="TTL", help="Lifetime: seconds, or 90m, 24h, 7d (60 s to 30 days; default 24h)."),
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create a token; its secret is shown this once."""
    request = tokens_pb2.CreateTokenRequest(project_id=project, user_id=user, roles=role)
    duration = parse_ttl(ttl)
    if duration is not None:
        request.ttl.CopyFrom(duration)
    with open_api(api, token, state_dir) as client:
        created = client.call(tokens_pb2_grpc.TokensStub(client.channel).CreateToken, request)
    output.emit_one(fmt, created, created_rows)
    if fmt is Format.table:
        output.err("keep the token now: it is not stored and cannot be shown again")


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id (from `token list`).")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Revoke a token at once."""
    with open_api(api, token, state_dir) as client:
        client.call(tokens_pb2_grpc.TokensStub(client.channel).RevokeToken, tokens_pb2.RevokeTokenRequest(id=token_id))
    print(f"token {token_id} revoked")


@app.command("list")
def list_tokens(
    project: Annotated[
        str | None, typer.Option("--project", metavar="PROJECT", help="Only this project's tokens.")
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List the tokens made with `token create` (never their secrets)."""
    request = tokens_pb2.ListTokensRequest(project_id=project or "")
    with open_api(api, token, state_dir) as client:
        tokens = list_all(client, tokens_pb2_grpc.TokensStub(client.channel).ListTokens, request, "tokens")
    output.emit_list(fmt, COLUMNS, tokens)

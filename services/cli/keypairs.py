"""``stratus keypair ...``: import, list, show and delete your SSH public keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli import batch, output
from services.cli.client import open_api
from services.cli.lookup import list_all
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from stratus.v1 import keypairs_pb2

app = typer.Typer(help="Keypairs: your SSH public keys, given to the servers you create with --key-name.",
                  no_args_is_help=True)  # fmt: skip
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Keypair name.")]
PUBLIC_KEY_MAX = 16 * 1024  # the api's limit

COLUMNS: list[output.Column] = [
    ("NAME", lambda k: k.name),
    ("TYPE", lambda k: k.type),
    ("FINGERPRINT", lambda k: k.fingerprint),
]


def keypair_rows(k: keypairs_pb2.Keypair) -> list[tuple[str, str]]:
    rows = [("name", k.name), ("type", k.type), ("fingerprint", k.fingerprint), ("public_key", k.public_key)]
    rows += [("user_id", k.user_id), ("project_id", k.project_id)]
    return [*rows, ("created_at", output.timestamp(k.created_at))]


def read_public_key(source: str, limit: int = PUBLIC_KEY_MAX) -> str:
    """The key line in FILE (``-``: stdin), surrounding whitespace removed; exit 2 when unreadable."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).expanduser().open("rb") as fh:
                data = fh.read(limit + 1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}", param_hint="--public-key") from None
    if len(data) > limit:
        raise typer.BadParameter(f"{source} is over {limit} bytes; is it a public key?", param_hint="--public-key")
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{source} is not text; is it a public key?", param_hint="--public-key") from None


@app.command("create")
def create(
    name: NameArg,
    public_key: Annotated[
        str,
        typer.Option("--public-key", metavar="FILE", help="An OpenSSH public key file (id_ed25519.pub); - for stdin."),
    ],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Import a public key (ssh-ed25519, ssh-rsa of 2048 bits or more, ecdsa-sha2-nistp256/384/521)."""
    key = read_public_key(public_key)
    with open_api(api, token, state_dir) as client:
        request = keypairs_pb2.CreateKeypairRequest(name=name, public_key=key)
        created = client.call(client.keypairs.CreateKeypair, request)
    output.emit_one(fmt, created, keypair_rows)


@app.command("list")
def list_keypairs(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List your keypairs (every page)."""
    with open_api(api, token, state_dir) as client:
        found = list_all(client, client.keypairs.ListKeypairs, keypairs_pb2.ListKeypairsRequest(), "keypairs")
    output.emit_list(fmt, COLUMNS, found)


@app.command("show")
def show(
    name: NameArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one keypair with its public key."""
    with open_api(api, token, state_dir) as client:
        found = client.call(client.keypairs.GetKeypair, keypairs_pb2.GetKeypairRequest(name=name))
    output.emit_one(fmt, found, keypair_rows)


@app.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Keypair names.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete keypairs (servers created with one keep their copy of the key); exit 1 if any failed."""
    with open_api(api, token, state_dir) as client:
        outcome = batch.delete_each(
            "keypair", names, lambda name: name,
            lambda name: client.call(client.keypairs.DeleteKeypair, keypairs_pb2.DeleteKeypairRequest(name=name)),
        )  # fmt: skip
    for name, _ in outcome.done:
        print(f"keypair {name} deleted")
    batch.exit_if_failed("keypair", len(names), outcome)

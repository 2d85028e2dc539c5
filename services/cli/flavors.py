"""``stratus flavor ...``: the sizes servers come in."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import batch, output
from services.cli.client import open_api
from services.cli.lookup import list_all, resolve_id
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from services.cli.pairs import pairs_option
from stratus.v1 import flavors_pb2

app = typer.Typer(help="Flavors: the sizes servers come in.", no_args_is_help=True)

COLUMNS: list[output.Column] = [
    ("ID", lambda f: f.id),
    ("NAME", lambda f: f.name),
    ("VCPUS", lambda f: str(f.vcpus)),
    ("RAM_MB", lambda f: str(f.ram_mb)),
    ("DISK_GB", lambda f: str(f.disk_gb)),
    ("EXTRA_SPECS", lambda f: output.mapping(f.extra_specs)),
]


def flavor_rows(f: flavors_pb2.Flavor) -> list[tuple[str, str]]:
    return [(header.lower(), get(f)) for header, get in COLUMNS]


@app.command("list")
def list_flavors(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List flavors."""
    with open_api(api, token, state_dir) as client:
        flavors = list_all(client, client.flavors.ListFlavors, flavors_pb2.ListFlavorsRequest(), "flavors")
    output.emit_list(fmt, COLUMNS, flavors)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Flavor name.")],
    vcpus: Annotated[int, typer.Option("--vcpus", help="Virtual CPUs.", min=1)],
    ram: Annotated[int, typer.Option("--ram", metavar="MB", help="Memory in MiB.", min=1)],
    disk: Annotated[int, typer.Option("--disk", metavar="GB", help="Root disk in GB.", min=0)],
    spec: Annotated[
        list[str] | None, typer.Option("--spec", metavar="KEY=VALUE", help="Extra spec (repeatable).")
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create a flavor (admin)."""
    flavor = flavors_pb2.Flavor(name=name, vcpus=vcpus, ram_mb=ram, disk_gb=disk)
    flavor.extra_specs.update(pairs_option(spec, "--spec"))
    with open_api(api, token, state_dir) as client:
        created = client.call(client.flavors.CreateFlavor, flavors_pb2.CreateFlavorRequest(flavor=flavor))
    output.emit_one(fmt, created, flavor_rows)


@app.command("show")
def show(
    flavor: Annotated[str, typer.Argument(metavar="FLAVOR", help="Flavor id or name.")],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one flavor."""
    with open_api(api, token, state_dir) as client:
        found = client.call(client.flavors.GetFlavor, flavors_pb2.GetFlavorRequest(id=flavor))
    output.emit_one(fmt, found, flavor_rows)


@app.command("delete")
def delete(
    flavors: Annotated[list[str], typer.Argument(metavar="FLAVOR...", help="Flavor ids or names.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete flavors (admin); exit 1 if any could not be."""
    with open_api(api, token, state_dir) as client:
        known = list_all(client, client.flavors.ListFlavors, flavors_pb2.ListFlavorsRequest(), "flavors")
        outcome = batch.delete_each(
            "flavor", flavors, lambda wanted: resolve_id(known, wanted, "flavor"),
            lambda fid: client.call(client.flavors.DeleteFlavor, flavors_pb2.DeleteFlavorRequest(id=fid)),
        )  # fmt: skip
    for flavor_id, _ in outcome.done:
        print(f"flavor {flavor_id} deleted")
    batch.exit_if_failed("flavor", len(flavors), outcome)

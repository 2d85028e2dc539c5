"""``stratus aggregate ...``: named sets of hosts with metadata, availability zones among it (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import batch, output
from services.cli.client import Api, open_api
from services.cli.lookup import id_for, list_all, resolve_id
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from services.cli.pairs import parse_pairs
from stratus.v1 import aggregates_pb2

app = typer.Typer(help="Aggregates: sets of hosts with metadata and zones (admin).", no_args_is_help=True)
IdArg = Annotated[str, typer.Argument(metavar="ID", help="Aggregate id or name.")]
HostArg = Annotated[str, typer.Argument(metavar="HOST", help="A compute host, e.g. compute-1.")]

COLUMNS: list[output.Column] = [
    ("ID", lambda a: a.id),
    ("NAME", lambda a: a.name),
    ("AZ", lambda a: a.availability_zone),
    ("HOSTS", lambda a: ", ".join(a.hosts)),
    ("METADATA", lambda a: output.mapping(a.metadata)),
]


def aggregate_rows(a: aggregates_pb2.Aggregate) -> list[tuple[str, str]]:
    rows = [(header.lower(), get(a)) for header, get in COLUMNS]
    return [*rows, ("created_at", output.timestamp(a.created_at)), ("updated_at", output.timestamp(a.updated_at))]


def all_aggregates(api: Api) -> list[aggregates_pb2.Aggregate]:
    """Every aggregate, page after page."""
    return list_all(api, api.aggregates.ListAggregates, aggregates_pb2.ListAggregatesRequest(), "aggregates")


def resolve_aggregate(api: Api, wanted: str) -> str:
    return id_for(all_aggregates(api), wanted, "aggregate")


def show_result(fmt: Format, aggregate: aggregates_pb2.Aggregate) -> None:
    output.emit_one(fmt, aggregate, aggregate_rows)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Aggregate name (unique).")],
    zone: Annotated[
        str | None, typer.Option("--zone", metavar="AZ", help="Make it an availability zone.", show_default=False)
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create an aggregate, optionally an availability zone."""
    aggregate = aggregates_pb2.Aggregate(name=name, availability_zone=zone or "")
    with open_api(api, token, state_dir) as client:
        request = aggregates_pb2.CreateAggregateRequest(aggregate=aggregate)
        show_result(fmt, client.call(client.aggregates.CreateAggregate, request))


@app.command("list")
def list_aggregates(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List aggregates with their hosts and metadata."""
    with open_api(api, token, state_dir) as client:
        aggregates = all_aggregates(client)
    output.emit_list(fmt, COLUMNS, aggregates)


@app.command("show")
def show(
    aggregate: IdArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show one aggregate."""
    with open_api(api, token, state_dir) as client:
        request = aggregates_pb2.GetAggregateRequest(id=resolve_aggregate(client, aggregate))
        show_result(fmt, client.call(client.aggregates.GetAggregate, request))


@app.command("delete")
def delete(
    aggregates: Annotated[list[str], typer.Argument(metavar="AGGREGATE...", help="Aggregate ids or names.")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Delete aggregates (each refused while it has hosts); exit 1 if any could not be."""
    with open_api(api, token, state_dir) as client:
        known = all_aggregates(client)
        outcome = batch.delete_each(
            "aggregate", aggregates, lambda wanted: resolve_id(known, wanted, "aggregate"),
            lambda aid: client.call(client.aggregates.DeleteAggregate, aggregates_pb2.DeleteAggregateRequest(id=aid)),
        )  # fmt: skip
    for aggregate_id, _ in outcome.done:
        print(f"aggregate {aggregate_id} deleted")
    batch.exit_if_failed("aggregate", len(aggregates), outcome)


@app.command("set")
def set_metadata(
    aggregate: IdArg,
    pairs: Annotated[
        list[str], typer.Argument(metavar="KEY=VALUE...", help="Metadata to set; KEY= (empty) removes KEY.")
    ],
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Set metadata, e.g. `availability_zone=az1` or `ram_weight_multiplier=2.0`."""
    try:
        metadata = parse_pairs(pairs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'KEY=VALUE...'") from exc
    with open_api(api, token, state_dir) as client:
        request = aggregates_pb2.SetAggregateMetadataRequest(id=resolve_aggregate(client, aggregate), metadata=metadata)
        show_result(fmt, client.call(client.aggregates.SetAggregateMetadata, request))


@app.command("add-host")
def add_host(
    aggregate: IdArg,
    host: HostArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Add a compute host to an aggregate."""
    with open_api(api, token, state_dir) as client:
        request = aggregates_pb2.AddAggregateHostRequest(id=resolve_aggregate(client, aggregate), host=host)
        show_result(fmt, client.call(client.aggregates.AddAggregateHost, request))


@app.command("remove-host")
def remove_host(
    aggregate: IdArg,
    host: HostArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Remove a host from an aggregate."""
    with open_api(api, token, state_dir) as client:
        request = aggregates_pb2.RemoveAggregateHostRequest(id=resolve_aggregate(client, aggregate), host=host)
        show_result(fmt, client.call(client.aggregates.RemoveAggregateHost, request))

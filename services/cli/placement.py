"""``stratus placement explain``: where a server would go and why, without creating it (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import output
from services.cli.client import open_api
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from services.cli.pairs import pairs_option
from services.cli.server_groups import resolve_group
from services.cli.servers import resolve_flavor, resolve_image
from stratus.v1 import placement_pb2, servers_pb2

app = typer.Typer(help="Placement: ask the scheduler without creating anything (admin).", no_args_is_help=True)

FILTER_COLUMNS: list[output.Column] = [
    ("FILTER", lambda f: f.filter),
    ("IN", lambda f: str(f.hosts_in)),
    ("OUT", lambda f: str(f.hosts_out)),
    ("WHY", lambda f: "\n".join(part for part in (f.summary, *f.examples) if part)),
]
HOST_COLUMNS: list[output.Column] = [
    ("RANK", lambda h: str(h[0])),
    ("HOST", lambda h: h[1].host),
    ("WEIGHT", lambda h: f"{h[1].weight:.4f}"),
]


def print_explanation(explanation: placement_pb2.PlacementExplanation) -> None:
    output.print_table(FILTER_COLUMNS, explanation.filters)
    if explanation.hosts:
        print()
        output.print_table(HOST_COLUMNS, list(enumerate(explanation.hosts, start=1)))
    print()
    if explanation.selected_host:
        print(f"would go to: {explanation.selected_host}")
    else:
        print(f"no valid host: {explanation.message or 'no host passed the filters'}")
    if explanation.metadata:
        print(f"detail: {output.mapping(explanation.metadata)}")


@app.command("explain")
def explain(
    flavor: Annotated[str, typer.Option("--flavor", help="Flavor id or name.")],
    image: Annotated[str, typer.Option("--image", help="Image id or name.")],
    az: Annotated[str | None, typer.Option("--az", help="Availability zone.", show_default=False)] = None,
    group: Annotated[str | None, typer.Option("--group", help="Server group id or name.", show_default=False)] = None,
    hint: Annotated[
        list[str] | None, typer.Option("--hint", metavar="KEY=VALUE", help="Scheduler hint (repeatable).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="The project (default: the caller's).", show_default=False)
    ] = None,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Which filter removed which hosts and why, and how the rest rank; claims nothing. Exit 1 if no host fits."""
    hints = pairs_option(hint, "--hint")
    with open_api(api, token, state_dir) as client:
        server = servers_pb2.Server(
            flavor_id=resolve_flavor(client, flavor), image_id=resolve_image(client, image),
            availability_zone=az or "", server_group_id=resolve_group(client, group) if group else "",
            scheduler_hints=hints,
        )  # fmt: skip
        request = placement_pb2.ExplainPlacementRequest(server=server, project_id=project or "")
        explanation: placement_pb2.PlacementExplanation = client.call(client.placement.ExplainPlacement, request)
    if fmt is Format.table:
        print_explanation(explanation)
    else:
        output.emit_data(fmt, output.to_dict(explanation))
    if not explanation.selected_host:
        raise typer.Exit(1)  # as a create would fail: no valid host

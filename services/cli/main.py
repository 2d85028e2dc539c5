"""``stratus``: run a process, start a stack (``stratus up``), or use one (``stratus server ...``)."""

from __future__ import annotations

import typer

from services.cli import (
    admin,
    aggregates,
    columns,
    etcd_admin,
    flavors,
    images,
    keypairs,
    placement,
    processes,
    quotas,
    server_actions,
    server_groups,
    server_history,
    servers,
    tokens,
    version,
)
from services.launcher.command import up

app = typer.Typer(
    name="stratus",
    help="Stratus: a compute cloud control plane.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
)
app.callback()(version.root_options)
app.command("up", rich_help_panel="Stack")(up)
processes.register(app)
server_actions.register(servers.app)
server_history.register(servers.app)
app.add_typer(servers.app, name="server", rich_help_panel="Resources")
app.add_typer(flavors.app, name="flavor", rich_help_panel="Resources")
app.add_typer(images.app, name="image", rich_help_panel="Resources")
app.add_typer(server_groups.app, name="server-group", rich_help_panel="Resources")
app.add_typer(keypairs.app, name="keypair", rich_help_panel="Resources")
app.add_typer(admin.service_app, name="service", rich_help_panel="Admin")
app.add_typer(admin.host_app, name="host", rich_help_panel="Admin")
app.add_typer(aggregates.app, name="aggregate", rich_help_panel="Admin")
app.add_typer(placement.app, name="placement", rich_help_panel="Admin")
app.add_typer(quotas.app, name="quota", rich_help_panel="Resources")
app.add_typer(tokens.app, name="token", rich_help_panel="Admin")
app.add_typer(etcd_admin.app, name="etcd", rich_help_panel="Admin")
columns.add_column_option(app)  # after every sub-app: -c wherever there is -f


def main() -> None:
    app()


if __name__ == "__main__":
    main()

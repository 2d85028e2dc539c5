"""``stratus service ...`` and ``stratus host ...``: the operator's view (admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.cli import output
from services.cli.client import open_api
from services.cli.lookup import list_all, pages
from services.cli.options import ApiOpt, StateDirOpt, TokenOpt
from services.cli.output import Format, FormatOpt
from stratus.v1 import hosts_pb2, services_pb2

service_app = typer.Typer(help="Services: every process of the stack (admin).", no_args_is_help=True)
host_app = typer.Typer(help="Hosts: compute nodes and their usage (admin).", no_args_is_help=True)

SERVICE_COLUMNS: list[output.Column] = [
    ("BINARY", lambda s: s.binary),
    ("HOST", lambda s: s.host),
    ("STATE", lambda s: output.enum_label(s, "state")),
    ("STATUS", lambda s: output.enum_label(s, "status")),
    ("FORCED_DOWN", lambda s: "yes" if s.forced_down else ""),
    ("ENDPOINT", lambda s: s.endpoint),
    ("LAST_SEEN", lambda s: output.timestamp(s.last_seen)),
    ("REASON", lambda s: s.disabled_reason),
    ("DEGRADED", lambda s: s.degraded_reason),
]


def used(used: int, total: int) -> str:
    return f"{used}/{total}"


HOST_COLUMNS: list[output.Column] = [
    ("HOST", lambda h: h.host),
    ("STATE", lambda h: output.enum_label(h, "state")),
    ("STATUS", lambda h: output.enum_label(h, "status")),
    ("VCPUS", lambda h: used(h.vcpus_used, h.vcpus)),
    ("RAM_MB", lambda h: used(h.ram_mb_used, h.ram_mb)),
    ("DISK_GB", lambda h: used(h.disk_gb_used, h.disk_gb)),
    ("SERVERS", lambda h: str(h.running_servers)),
    ("HYPERVISOR", lambda h: h.hypervisor_type),
    ("AZ", lambda h: h.availability_zone),
    ("DEGRADED", lambda h: h.degraded_reason),
]

BinaryArg = Annotated[str, typer.Argument(help="api, scheduler, compute or servicegroup.")]
HostArg = Annotated[str, typer.Argument(help="The service's host.")]


@service_app.command("list")
def list_services(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List services with their state (UP/DOWN) and status (ENABLED/DISABLED); then etcd's alarms
    (NOSPACE: etcd is out of space and refuses writes), as warnings on stderr."""
    services: list[services_pb2.Service] = []
    alarms: list[services_pb2.StoreAlarm] = []
    with open_api(api, token, state_dir) as client:
        for reply in pages(client, client.services.ListServices, services_pb2.ListServicesRequest()):
            services.extend(reply.services)
            alarms = list(reply.store_alarms)  # every page carries them: the newest, the last page's
    output.emit_list(fmt, SERVICE_COLUMNS, services)
    for alarm in alarms:  # on stderr, so -f json|yaml|value output stays parseable
        output.err(f"warning: {alarm.message}")


def update_service(
    request: services_pb2.UpdateServiceRequest, fmt: Format, api: str | None, token: str | None, state_dir: Path | None
) -> None:
    with open_api(api, token, state_dir) as client:
        service = client.call(client.services.UpdateService, request)
    output.emit_one(fmt, service, lambda s: [(h.lower(), get(s)) for h, get in SERVICE_COLUMNS])


@service_app.command("disable")
def disable(
    binary: BinaryArg,
    host: HostArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in service list).")] = "",
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Disable a service: the scheduler sends no new work to it."""
    request = services_pb2.UpdateServiceRequest(
        binary=binary, host=host, status=services_pb2.SERVICE_STATUS_DISABLED, disabled_reason=reason
    )
    update_service(request, fmt, api, token, state_dir)


@service_app.command("enable")
def enable(
    binary: BinaryArg,
    host: HostArg,
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Enable a disabled service."""
    request = services_pb2.UpdateServiceRequest(
        binary=binary, host=host, status=services_pb2.SERVICE_STATUS_ENABLED, disabled_reason=""
    )
    update_service(request, fmt, api, token, state_dir)


@host_app.command("list")
def list_hosts(
    fmt: FormatOpt = Format.table,
    api: ApiOpt = None,
    token: TokenOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """List compute hosts with used/total resources."""
    with open_api(api, token, state_dir) as client:
        hosts = list_all(client, client.hosts.ListHosts, hosts_pb2.ListHostsRequest(), "hosts")
    output.emit_list(fmt, HOST_COLUMNS, hosts)

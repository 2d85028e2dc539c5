"""``stratus api|scheduler|compute|servicegroup``: run one process in the foreground until SIGTERM.

Every setting can come from a flag, ``--set KEY=VALUE``, the environment (``STRATUS_<KEY>``) or
the ``--config`` TOML file, in that order of precedence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli import process_run

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.", show_default=False)]
EtcdOpt = Annotated[str | None, typer.Option("--etcd", help="etcd URLs, comma-separated.", show_default=False)]
HostOpt = Annotated[str | None, typer.Option("--host", help="This process's host name.", show_default=False)]
ListenOpt = Annotated[str | None, typer.Option("--listen", help="Address to listen on.", show_default=False)]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port to listen on (0: a free one).", show_default=False)]
StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help="State directory.", show_default=False)]
LeaseTtlOpt = Annotated[int | None, typer.Option("--lease-ttl", help="etcd lease TTL in seconds.", show_default=False)]
LogLevelOpt = Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING...", show_default=False)]
LogFormatOpt = Annotated[str | None, typer.Option("--log-format", help="json or text.", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Any other setting (repeatable).")]


def common_flags(
    etcd: str | None,
    host: str | None,
    listen: str | None,
    port: int | None,
    state_dir: Path | None,
    lease_ttl: int | None,
    log_level: str | None,
    log_format: str | None,
) -> dict[str, Any]:
    return {
        "etcd": etcd,
        "host": host,
        "listen": listen,
        "port": port,
        "state_dir": state_dir,
        "lease_ttl_s": lease_ttl,
        "log_level": log_level,
        "log_format": log_format,
    }


def api(
    config: ConfigOpt = None,
    etcd: EtcdOpt = None,
    host: HostOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    lease_ttl: LeaseTtlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    tokens_file: Annotated[Path | None, typer.Option(help="Bearer tokens file.", show_default=False)] = None,
    images_dir: Annotated[Path | None, typer.Option(help="Where image bytes go.", show_default=False)] = None,
    max_build_attempts: Annotated[
        int | None, typer.Option(help="Hosts a build may try before ERROR.", show_default=False)
    ] = None,
    seed: Annotated[
        bool | None, typer.Option("--seed/--no-seed", help="Seed default flavors and image.", show_default=False)
    ] = None,
    sets: SetOpt = None,
) -> None:
    """Run the public API server."""
    flags = common_flags(etcd, host, listen, port, state_dir, lease_ttl, log_level, log_format)
    flags |= {"tokens_file": tokens_file, "images_dir": images_dir, "max_build_attempts": max_build_attempts}
    flags["seed"] = seed
    process_run.run("api", config, sets, flags)


def compute(
    config: ConfigOpt = None,
    etcd: EtcdOpt = None,
    host: HostOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    lease_ttl: LeaseTtlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    driver: Annotated[str | None, typer.Option(help="Virt driver: libvirt or fake.", show_default=False)] = None,
    fake_host: Annotated[
        str | None, typer.Option(metavar="vcpus=V,ram_mb=R,disk_gb=D", help="Size of the fake host.")
    ] = None,
    fake_spawn_delay: Annotated[
        float | None, typer.Option(help="Seconds a fake spawn takes.", show_default=False)
    ] = None,
    fake_fail_spawn: Annotated[
        bool | None, typer.Option("--fake-fail-spawn/--no-fake-fail-spawn", help="Make every fake spawn fail.")
    ] = None,
    availability_zone: Annotated[str | None, typer.Option(help="This node's zone.", show_default=False)] = None,
    sets: SetOpt = None,
) -> None:
    """Run a compute node."""
    flags = common_flags(etcd, host, listen, port, state_dir, lease_ttl, log_level, log_format)
    flags |= {"driver": driver, "fake_host": fake_host, "fake_spawn_delay_s": fake_spawn_delay}
    flags |= {"fake_fail_spawn": fake_fail_spawn, "availability_zone": availability_zone}
    process_run.run("compute", config, sets, flags)


def scheduler(
    config: ConfigOpt = None,
    etcd: EtcdOpt = None,
    host: HostOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    lease_ttl: LeaseTtlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    sets: SetOpt = None,
) -> None:
    """Run a scheduler."""
    flags = common_flags(etcd, host, listen, port, state_dir, lease_ttl, log_level, log_format)
    process_run.run("scheduler", config, sets, flags)


def servicegroup(
    config: ConfigOpt = None,
    etcd: EtcdOpt = None,
    host: HostOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    lease_ttl: LeaseTtlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    sets: SetOpt = None,
) -> None:
    """Run the membership service."""
    flags = common_flags(etcd, host, listen, port, state_dir, lease_ttl, log_level, log_format)
    process_run.run("servicegroup", config, sets, flags)


def register(app: typer.Typer) -> None:
    for command in (api, scheduler, compute, servicegroup):
        app.command(command.__name__, rich_help_panel="Processes")(command)

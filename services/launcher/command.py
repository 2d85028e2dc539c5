"""The ``stratus up`` command: options in, a supervised stack until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.core.config import DEFAULT_STATE_DIR
from services.core.private_files import make_private, tighten_tree
from services.launcher.options import (
    MAX_APIS,
    LaunchError,
    StackOptions,
    default_prefix,
    parse_etcd_urls,
    parse_fake_host,
    parse_size,
)


class Driver(StrEnum):
    libvirt = "libvirt"
    fake = "fake"


def _fake_host(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_fake_host(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _etcd(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return ",".join(parse_etcd_urls(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _size(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(parse_size(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s stratus up: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("stratus.up")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def private_state_dir(state_dir: Path) -> None:
    """Umask 077 for the launcher and every child it starts; the state dir 0700, and whatever an
    older release left in it open to group or others put right."""
    if state_dir in (Path.home().resolve(), Path(state_dir.anchor)):
        raise LaunchError(f"the state dir {state_dir} is made private with all in it: give a directory of its own")
    try:
        make_private(state_dir)
        changed = tighten_tree(state_dir)
    except OSError as exc:
        raise LaunchError(f"cannot make the state dir {state_dir} private: {exc}") from exc
    if changed:
        logging.getLogger("stratus.up").info("%s: %d file(s) were open to group or others; now private",
                                             state_dir, len(changed))  # fmt: skip


def up(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the stack keeps its state.")
    ] = DEFAULT_STATE_DIR,
    driver: Annotated[
        Driver, typer.Option("--driver", help="Virt driver of the computes (libvirt needs `make libvirtd`).")
    ] = Driver.libvirt,
    computes: Annotated[int, typer.Option("--computes", min=1, help="Compute services to start.")] = 1,
    schedulers: Annotated[int, typer.Option("--schedulers", min=1, help="Schedulers to start.")] = 1,
    fake_host: Annotated[
        str | None,
        typer.Option(
            "--fake-host", metavar="vcpus=V,ram_mb=R,disk_gb=D", callback=_fake_host, help="Size of each fake host."
        ),
    ] = None,
    apis: Annotated[
        int, typer.Option("--apis", min=1, max=MAX_APIS, help="Api replicas to start (api-1..api-N), each on its port.")
    ] = 1,
    api_port: Annotated[
        int,
        typer.Option(
            "--api-port", min=0, max=65535, help="The first api's port; the others take the next ones (0: free ports)."
        ),
    ] = 8774,
    etcd: Annotated[
        str | None,
        typer.Option("--etcd", metavar="URL,...", callback=_etcd, help="Use this etcd cluster instead of a local one."),
    ] = None,
    lease_ttl: Annotated[
        int | None, typer.Option("--lease-ttl", min=2, max=300, help="Service lease TTL, seconds.", show_default=False)
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="No CA: plaintext api, internal ports and etcd, open to anyone who can reach them. Without it "
            "(the default) a local CA in STATE_DIR/tls gives TLS on the api and mutual TLS between the "
            "processes and to etcd.",
        ),
    ] = False,
    tls: Annotated[bool, typer.Option("--tls", hidden=True, help="The default; kept for old scripts.")] = False,
    etcd_ca: Annotated[
        Path | None, typer.Option("--etcd-ca", help="CA of an --etcd cluster that speaks TLS.", show_default=False)
    ] = None,
    etcd_cert: Annotated[
        Path | None,
        typer.Option("--etcd-cert", help="Client cert for an --etcd cluster that wants one.", show_default=False),
    ] = None,
    etcd_key: Annotated[
        Path | None, typer.Option("--etcd-key", help="The key of --etcd-cert.", show_default=False)
    ] = None,
    etcd_quota_bytes: Annotated[
        str | None,
        typer.Option(
            "--etcd-quota-bytes",
            metavar="SIZE",
            callback=_size,
            help="The local etcd's quota (--quota-backend-bytes), e.g. 2GiB, 512MiB; past it etcd refuses "
            "writes (NOSPACE) [default: 2GiB].",
            show_default=False,
        ),
    ] = None,
    etcd_defrag_interval: Annotated[
        float | None,
        typer.Option(
            "--etcd-defrag-interval",
            min=0,
            metavar="SECONDS",
            help="How often the launcher defragments the local etcd when worth it; 0: only to get out "
            "of NOSPACE [default: 3600].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a whole stack on this machine (etcd too) and supervise it until Ctrl-C."""
    from services.core.etcd import EtcdTls
    from services.launcher.stack import Stack

    if tls and insecure:
        raise typer.BadParameter("--tls and --insecure contradict each other (TLS is the default)")
    if api_port and api_port + apis - 1 > 65535:
        raise typer.BadParameter(f"--api-port {api_port} leaves no room for {apis} apis (ports up to 65535)")
    if (etcd_cert is None) != (etcd_key is None) or ((etcd_cert or etcd_key) and etcd_ca is None):
        raise typer.BadParameter("--etcd-cert and --etcd-key go together, and with --etcd-ca")
    if etcd_ca is not None and not etcd:
        raise typer.BadParameter("--etcd-ca is for an external cluster: give --etcd URL too")
    if etcd and (etcd_quota_bytes is not None or etcd_defrag_interval is not None):
        raise typer.BadParameter("--etcd-quota-bytes and --etcd-defrag-interval are for the local etcd, not --etcd")
    if etcd and etcd_ca is None and any(u.startswith("https://") for u in etcd.split(",")):
        raise typer.BadParameter("an https:// --etcd URL needs --etcd-ca (the CA that signed its certificate)")
    etcd_tls = None
    if etcd_ca is not None:
        cert, key = (p.expanduser().resolve() if p else None for p in (etcd_cert, etcd_key))
        etcd_tls = EtcdTls(etcd_ca.expanduser().resolve(), cert, key)

    opts = StackOptions(
        state_dir=state_dir.expanduser().resolve(),
        driver=driver.value,
        computes=computes,
        schedulers=schedulers,
        fake_host=fake_host,
        api_port=api_port,
        apis=apis,
        etcd=parse_etcd_urls(etcd) if etcd else (),
        lease_ttl=lease_ttl,
        prefix=default_prefix(),
        insecure=insecure,
        etcd_tls=etcd_tls,
        etcd_quota_bytes=int(etcd_quota_bytes) if etcd_quota_bytes else None,
        etcd_defrag_interval_s=etcd_defrag_interval,
    )
    setup_logging()
    try:
        private_state_dir(opts.state_dir)
        code = asyncio.run(Stack(opts).run())
    except LaunchError as exc:
        logging.getLogger("stratus.up").error("%s", exc)
        code = 1
    raise typer.Exit(code)

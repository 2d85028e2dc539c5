"""The processes of a stack and their command lines."""

from __future__ import annotations

import sys
from pathlib import Path

from services.core.launcher.etcd_proc import EtcdPorts, etcd_argv
from services.core.launcher.options import StackOptions
from services.core.launcher.supervised import Supervised

CLI_MODULE = "services.core.cli.main"
STOP_ORDER = ("api", "compute", "scheduler", "servicegroup", "etcd")


def service_argv(binary: str, host: str, opts: StackOptions, etcd_urls: tuple[str, ...], port: int) -> list[str]:
    argv = [sys.executable, "-m", CLI_MODULE, binary, "--host", host, "--state-dir", str(opts.state_dir)]
    argv += ["--etcd", ",".join(etcd_urls), "--port", str(port)]
    if opts.lease_ttl is not None:
        argv += ["--lease-ttl", str(opts.lease_ttl)]
    if binary == "compute":
        argv += ["--driver", opts.driver]
        if opts.fake_host:
            argv += ["--fake-host", opts.fake_host]
    return argv


def service_hosts(opts: StackOptions) -> list[tuple[str, str]]:
    """(binary, host) in start order: servicegroup, schedulers, computes, api."""
    out = [("servicegroup", "servicegroup-1")]
    out += [("scheduler", f"scheduler-{i}") for i in range(1, opts.schedulers + 1)]
    out += [("compute", f"compute-{i}") for i in range(1, opts.computes + 1)]
    return [*out, ("api", "api-1")]


def plan_services(opts: StackOptions, etcd_urls: tuple[str, ...]) -> list[Supervised]:
    services = []
    for binary, host in service_hosts(opts):

        def argv(port: int, binary: str = binary, host: str = host) -> list[str]:
            return service_argv(binary, host, opts, etcd_urls, port)

        port = opts.api_port if binary == "api" else 0
        services.append(Supervised(binary, host, argv, opts.logs_dir / f"{host}.log", port=port))
    return services


def plan_etcd(opts: StackOptions, binary: str, data_dir: Path, ports: EtcdPorts) -> Supervised:
    def argv(_port: int) -> list[str]:
        return etcd_argv(binary, data_dir, ports)

    return Supervised("etcd", "etcd", argv, opts.logs_dir / "etcd.log", port=ports.client)

"""The processes of a stack and their command lines."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.core.etcd import EtcdTls
from services.core.tls import TlsFiles
from services.launcher.etcd_proc import DEFAULT_QUOTA_BYTES, EtcdPorts, etcd_argv
from services.launcher.options import StackOptions
from services.launcher.supervised import Supervised

CLI_MODULE = "services.cli.main"
STOP_ORDER = ("api", "compute", "scheduler", "servicegroup", "etcd")


@dataclass(frozen=True)
class TlsPlan:
    """The stack's certificates: each role's identity (its processes' certificate as server and as
    client, towards peers and the local etcd), and the api's public certificate."""

    roles: Mapping[str, TlsFiles]
    public: TlsFiles

    def local_etcd(self, role: str) -> EtcdTls:
        """How ``role``'s processes reach the etcd the launcher started: TLS with their identity."""
        identity = self.roles[role]
        return EtcdTls(identity.ca, identity.cert, identity.key)


def settings_args(values: dict[str, object]) -> list[str]:
    return [arg for key, value in values.items() if value is not None for arg in ("--set", f"{key}={value}")]


def etcd_tls_of(binary: str, opts: StackOptions, tls: TlsPlan | None) -> EtcdTls | None:
    """How ``binary`` reaches etcd: an external cluster's TLS as given, the local etcd with its
    role's identity (plaintext with ``--insecure``)."""
    if opts.etcd:
        return opts.etcd_tls
    return tls.local_etcd(binary) if tls is not None else None


def identity_settings(identity: TlsFiles | None, etcd_tls: EtcdTls | None) -> dict[str, object]:
    """The settings of a process's certificate towards its peers and of its TLS towards etcd."""
    values: dict[str, object] = {}
    if identity is not None:
        values |= {"tls_ca": identity.ca, "tls_cert": identity.cert, "tls_key": identity.key}
    if etcd_tls is not None:
        values |= {"etcd_ca": etcd_tls.ca, "etcd_cert": etcd_tls.cert, "etcd_key": etcd_tls.key}
        values["etcd_server_name"] = etcd_tls.server_name
    return values


def tls_args(binary: str, tls: TlsPlan | None, etcd_tls: EtcdTls | None) -> list[str]:
    """``--set`` settings for TLS between the processes and towards etcd."""
    values = identity_settings(tls.roles[binary] if tls is not None else None, etcd_tls)
    if tls is not None and binary == "api":  # the public port: its own certificate, no client certificate asked
        values |= {"tls_public_cert": tls.public.cert, "tls_public_key": tls.public.key}
    return settings_args(values)


def service_argv(
    binary: str, host: str, opts: StackOptions, etcd_urls: tuple[str, ...], port: int, tls: TlsPlan | None = None
) -> list[str]:
    argv = [sys.executable, "-m", CLI_MODULE, binary, "--host", host, "--state-dir", str(opts.state_dir)]
    argv += ["--etcd", ",".join(etcd_urls), "--port", str(port)]
    if opts.lease_ttl is not None:
        argv += ["--lease-ttl", str(opts.lease_ttl)]
    argv += tls_args(binary, tls, etcd_tls_of(binary, opts, tls))
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
    return [*out, *(("api", f"api-{i}") for i in range(1, opts.apis + 1))]


def api_ports(opts: StackOptions) -> list[int]:
    """The ports of api-1..api-N: ``--api-port`` and the ones after it, or all 0 (free ones) for 0."""
    return [opts.api_port + i if opts.api_port else 0 for i in range(opts.apis)]


def plan_services(opts: StackOptions, etcd_urls: tuple[str, ...], tls: TlsPlan | None = None) -> list[Supervised]:
    services = []
    ports = iter(api_ports(opts))
    for binary, host in service_hosts(opts):

        def argv(port: int, binary: str = binary, host: str = host) -> list[str]:
            return service_argv(binary, host, opts, etcd_urls, port, tls)

        port = next(ports) if binary == "api" else 0
        services.append(Supervised(binary, host, argv, opts.logs_dir / f"{host}.log", port=port))
    return services


def plan_etcd(
    opts: StackOptions, binary: str, data_dir: Path, ports: EtcdPorts, tls: TlsFiles | None = None
) -> Supervised:
    quota = opts.etcd_quota_bytes or DEFAULT_QUOTA_BYTES

    def argv(_port: int) -> list[str]:
        return etcd_argv(binary, data_dir, ports, quota, tls)

    return Supervised("etcd", "etcd", argv, opts.logs_dir / "etcd.log", port=ports.client)

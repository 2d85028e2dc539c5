"""Runs ``stratus up`` into a temp dir for functional tests and talks to it as a client would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from services.core.etcd import EtcdTls, Store
from services.core.tls import TlsFiles, channel_credentials, sync_channel
from services.launcher.plan import identity_settings, settings_args
from stratus.imagestore.v1 import imagestore_pb2_grpc
from stratus.v1 import (
    aggregates_pb2_grpc,
    flavors_pb2_grpc,
    hosts_pb2_grpc,
    images_pb2_grpc,
    keypairs_pb2_grpc,
    placement_pb2_grpc,
    quotas_pb2_grpc,
    servergroups_pb2_grpc,
    servers_pb2,
    servers_pb2_grpc,
    services_pb2_grpc,
)

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
# Test stacks hold more servers per project than the default quotas allow (capacity tests, a shared
# session stack): no limit on servers, cores and RAM unless a test's env says otherwise.
# tests/functional/test_quotas.py sets the limits it tests through UpdateQuotaSet.
ROOMY_QUOTAS = {"STRATUS_QUOTA": json.dumps({"instances": -1, "cores": -1, "ram_mb": -1})}


@dataclass
class Stack:
    state_dir: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)
    channel: grpc.Channel | None = None
    replica_channels: dict[str, grpc.Channel] = field(default_factory=dict)  # endpoint -> channel
    view_of: Stack | None = None  # set on a replica's view: it never stops the stack

    @property
    def api(self) -> str:
        return str(self.info["api"])

    @property
    def apis(self) -> list[str]:
        """Every api replica's endpoint (api-1 first), as stack.json lists them."""
        return [str(a) for a in self.info.get("apis") or [self.api]]

    def replica(self, index: int) -> Stack:
        """The stack through api replica ``index`` (0 is api-1): the same helpers and tokens, that
        replica's channel. Its channel is closed when the stack stops."""
        owner = self.view_of or self
        endpoint = self.apis[index]
        if endpoint not in owner.replica_channels:
            ca = self.info.get("ca_cert")
            owner.replica_channels[endpoint] = sync_channel(endpoint, Path(ca) if ca else None)
        return replace(owner, channel=owner.replica_channels[endpoint], replica_channels={}, view_of=owner)

    @property
    def replicas(self) -> list[Stack]:
        """A view per api replica (see ``replica``)."""
        return [self.replica(i) for i in range(len(self.apis))]

    def md(self, who: str = "admin") -> list[tuple[str, str]]:
        """Call metadata for ``admin``, ``demo`` or ``service`` (the token the computes use)."""
        tokens = {"admin": lambda: self.info["token"], "demo": lambda: self.info["demo_token"],
                  "service": lambda: (self.state_dir / "service.token").read_text().strip()}  # fmt: skip
        return [("authorization", f"Bearer {tokens[who]()}")]

    def tls_file(self, name: str) -> Path:
        return self.state_dir / "tls" / name

    @property
    def secure(self) -> bool:
        """TLS everywhere (the default); False for a stack started with ``--insecure``."""
        return bool(self.info.get("ca_cert"))

    def role_settings(self, role: str) -> list[str]:
        """``--set`` arguments for a process a test starts beside the stack as ``role``: its
        certificate towards peers and the stack's etcd (nothing for an ``--insecure`` stack)."""
        if not self.secure:
            return []
        return settings_args(identity_settings(self.identity(role), self.etcd_tls(role)))

    def identity(self, role: str) -> TlsFiles:
        cert, key = self.tls_file(f"role-{role}.pem"), self.tls_file(f"role-{role}-key.pem")
        return TlsFiles(self.tls_file("ca.pem"), cert, key)

    def channel_to(self, endpoint: str, role: str | None = None) -> grpc.Channel:
        """A channel to one of the stack's ports, trusting its CA and showing ``role``'s certificate
        when given (an internal port needs one); plaintext for an ``--insecure`` stack."""
        if not self.secure:
            return grpc.insecure_channel(endpoint)
        return grpc.secure_channel(
            endpoint, channel_credentials(self.tls_file("ca.pem"), self.identity(role) if role else None)
        )

    def grpcurl_args(self, role: str | None = None) -> list[str]:
        """grpcurl's transport flags for the stack's ports (as ``channel_to``)."""
        if not self.secure:
            return ["-plaintext"]
        files = self.identity(role) if role else None
        return ["-cacert", str(self.tls_file("ca.pem")),
                *(["-cert", str(files.cert), "-key", str(files.key)] if files else [])]  # fmt: skip

    def process_argv(self, binary: str, host: str, state_dir: Path, *extra: str) -> list[str]:
        """The command line of a ``binary`` process joining this stack as ``host``."""
        return [sys.executable, "-m", "services.cli.main", binary, "--etcd", ",".join(self.info["etcd"]),
                "--host", host, "--port", "0", "--state-dir", str(state_dir), *self.role_settings(binary),
                *extra]  # fmt: skip

    def etcd_tls(self, role: str = "launcher") -> EtcdTls | None:
        """How a test reaches the stack's own etcd: with ``role``'s certificate (None: plaintext)."""
        if not self.secure:
            return None
        files = self.identity(role)
        return EtcdTls(files.ca, files.cert, files.key)

    def etcd_store(self, prefix: str | None = None) -> Store:
        """A Store on the stack's etcd (not yet connected), under its prefix unless told another."""
        prefix = prefix or os.environ.get("STRATUS_PREFIX") or "/stratus/"
        return Store(list(self.info["etcd"]), prefix, self.etcd_tls())

    def reload(self) -> dict[str, Any]:
        self.info = json.loads((self.state_dir / "stack.json").read_text())
        return self.info

    @property
    def servers(self) -> servers_pb2_grpc.ServersStub:
        return servers_pb2_grpc.ServersStub(self.channel)

    @property
    def flavors(self) -> flavors_pb2_grpc.FlavorsStub:
        return flavors_pb2_grpc.FlavorsStub(self.channel)

    @property
    def images(self) -> images_pb2_grpc.ImagesStub:
        return images_pb2_grpc.ImagesStub(self.channel)

    @property
    def services(self) -> services_pb2_grpc.ServicesStub:
        return services_pb2_grpc.ServicesStub(self.channel)

    @property
    def hosts(self) -> hosts_pb2_grpc.HostsStub:
        return hosts_pb2_grpc.HostsStub(self.channel)

    @property
    def server_groups(self) -> servergroups_pb2_grpc.ServerGroupsStub:
        return servergroups_pb2_grpc.ServerGroupsStub(self.channel)

    @property
    def aggregates(self) -> aggregates_pb2_grpc.AggregatesStub:
        return aggregates_pb2_grpc.AggregatesStub(self.channel)

    @property
    def placement(self) -> placement_pb2_grpc.PlacementStub:
        return placement_pb2_grpc.PlacementStub(self.channel)

    @property
    def quotas(self) -> quotas_pb2_grpc.QuotasStub:
        return quotas_pb2_grpc.QuotasStub(self.channel)

    @property
    def image_store(self) -> imagestore_pb2_grpc.ImageStoreStub:
        return imagestore_pb2_grpc.ImageStoreStub(self.channel)

    @property
    def keypairs(self) -> keypairs_pb2_grpc.KeypairsStub:
        return keypairs_pb2_grpc.KeypairsStub(self.channel)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            out.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def wait_for_server(self, server_id: str, statuses: set[str], who: str = "admin", timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                server = self.servers.GetServer(servers_pb2.GetServerRequest(id=server_id), metadata=self.md(who))
            except grpc.RpcError as exc:  # the api is restarting: a polling client tries again
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            status = servers_pb2.ServerStatus.Name(server.status).removeprefix("SERVER_STATUS_")
            if status in statuses and server.task_state == 0:
                return server
            if time.monotonic() > deadline:
                raise AssertionError(f"server {server_id} stuck in {status}:\n{server}\n{self.log_tail()}")
            time.sleep(0.05)

    def wait_gone(self, server_id: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.servers.GetServer(servers_pb2.GetServerRequest(id=server_id), metadata=self.md())
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return
                raise
            time.sleep(0.05)
        raise AssertionError(f"server {server_id} was not deleted:\n{self.log_tail()}")

    def stop(self) -> int:
        if self.view_of is not None:
            raise RuntimeError("a replica's view does not stop the stack: stop the stack itself")
        for channel in [self.channel, *self.replica_channels.values()]:
            if channel is not None:
                channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_stack(state_dir: Path, *args: str, env: dict[str, str] | None = None) -> Stack:
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "services.cli.main", "up", "--state-dir", str(state_dir), "--api-port", "0"]
    log = (state_dir / "launcher.log").open("wb")
    proc = subprocess.Popen(
        [*cmd, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**ROOMY_QUOTAS, **os.environ, **(env or {})}
    )
    stack = Stack(state_dir, proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (state_dir / "stack.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"stratus up failed:\n{(state_dir / 'launcher.log').read_text()}\n{stack.log_tail()}")
        time.sleep(0.1)
    stack.reload()
    ca = stack.info.get("ca_cert")
    stack.channel = sync_channel(stack.api, Path(ca) if ca else None)
    return stack

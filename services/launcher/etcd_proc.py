"""A local single-member etcd for a stack: data in ``DIR/etcd``, loopback ports kept across runs."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from services.core.tls import TlsFiles
from services.launcher.children import log_tail
from services.launcher.options import LaunchError
from services.launcher.ports import LOOPBACK, free_ports, port_is_free

MEMBER_NAME = "stratus"
HEALTH_TIMEOUT_S = 30.0
# The database size at which etcd raises NOSPACE and refuses writes (``--quota-backend-bytes``):
# 2 GiB, etcd's own default made explicit so the launcher's upkeep knows it (``stratus up
# --etcd-quota-bytes`` sets another). Stratus keeps records, not image bytes, in etcd: a stack
# of thousands of servers, with an hour of history, stays far below it.
DEFAULT_QUOTA_BYTES = 2 << 30


@dataclass(frozen=True)
class EtcdPorts:
    client: int
    peer: int
    secure: bool = False  # https on both URLs (not kept in ports.json: each start says)

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.client}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.peer}"


def load_ports(path: Path) -> EtcdPorts | None:
    try:
        data = json.loads(path.read_text())
        return EtcdPorts(client=int(data["client"]), peer=int(data["peer"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: choose new ones


def choose_ports(data_dir: Path, secure: bool = False) -> EtcdPorts:
    """The ports of the last run if both are still free (so clients' saved URLs stay good), else new ones."""
    path = data_dir / "ports.json"
    previous = load_ports(path)
    if previous and previous.client != previous.peer and port_is_free(previous.client) and port_is_free(previous.peer):
        return replace(previous, secure=secure)
    client, peer = free_ports(2)
    ports = EtcdPorts(client, peer, secure)
    path.write_text(json.dumps({"client": client, "peer": peer}))
    return ports


def etcd_binary() -> str:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        raise LaunchError("etcd is not installed (apt-get install etcd-server), or pass --etcd URL to use a cluster")
    return found


def prepare_data_dir(state_dir: Path) -> Path:
    data_dir = state_dir / "etcd"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # etcd wants its data dir private
    return data_dir


def tls_argv(tls: TlsFiles) -> list[str]:
    """TLS on the client and peer URLs, each side needing a certificate from the stack's CA."""
    return [
        "--cert-file", str(tls.cert), "--key-file", str(tls.key),
        "--trusted-ca-file", str(tls.ca), "--client-cert-auth",
        "--peer-cert-file", str(tls.cert), "--peer-key-file", str(tls.key),
        "--peer-trusted-ca-file", str(tls.ca), "--peer-client-cert-auth",
    ]  # fmt: skip


def etcd_argv(
    binary: str,
    data_dir: Path,
    ports: EtcdPorts,
    quota_bytes: int = DEFAULT_QUOTA_BYTES,
    tls: TlsFiles | None = None,
) -> list[str]:
    if ports.secure != (tls is not None):
        raise ValueError("https etcd URLs go with TLS files, http ones without")
    return [
        binary,
        "--name", MEMBER_NAME,
        "--data-dir", str(data_dir),
        "--listen-client-urls", ports.client_url,
        "--advertise-client-urls", ports.client_url,
        "--listen-peer-urls", ports.peer_url,
        "--initial-advertise-peer-urls", ports.peer_url,
        "--initial-cluster", f"{MEMBER_NAME}={ports.peer_url}",
        "--heartbeat-interval", "50",
        "--election-timeout", "500",
        # History older than an hour goes (a watch or a page from before it is OUT_OF_RANGE: list
        # again); without it the history, and the data file, grow for ever.
        "--auto-compaction-mode", "periodic",
        "--auto-compaction-retention", "1h",
        # Past this the database is full: NOSPACE, writes refused (see etcd_upkeep for the way out).
        "--quota-backend-bytes", str(quota_bytes),
        *(tls_argv(tls) if tls else []),
    ]  # fmt: skip


def is_healthy(client_url: str, tls: TlsFiles | None = None) -> bool:
    """etcd's ``/health`` says true; over https showing ``tls``'s certificate when given."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca))
        context.load_cert_chain(str(tls.cert), str(tls.key))
    try:
        with urllib.request.urlopen(f"{client_url}/health", timeout=1, context=context) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError, urllib.error.URLError):
        return False


async def wait_healthy(
    client_url: str,
    proc: subprocess.Popen[bytes] | None,
    log_path: Path | None,
    tls: TlsFiles | None = None,
    timeout_s: float = HEALTH_TIMEOUT_S,
) -> None:
    """Polls ``/health`` until etcd says true; fails at once if our etcd process exits."""
    deadline = time.monotonic() + timeout_s
    while not is_healthy(client_url, tls):  # a blocking probe (1 s at most): no thread before children fork
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log_path) if log_path else ""
            raise LaunchError(f"etcd exited with code {proc.returncode} while starting; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise LaunchError(f"etcd at {client_url} is not healthy after {timeout_s:g}s")
        await asyncio.sleep(0.1)

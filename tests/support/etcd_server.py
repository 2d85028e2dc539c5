"""A throwaway etcd for tests: temp data dir, free loopback ports, stopped by pid."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.core.tls import TlsFiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdServer:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    client_url: str

    @property
    def endpoint(self) -> str:
        return self.client_url.split("://", 1)[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _health_context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def start_etcd(timeout_s: float = 20.0, tls: TlsFiles | None = None, extra_args: Sequence[str] = ()) -> EtcdServer:
    """With ``tls`` (its CA, and the server certificate it shows): clients speak TLS and must show a
    certificate signed by that CA (``--client-cert-auth``). ``extra_args``: more etcd flags
    (``--quota-backend-bytes``, say)."""
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    tls_flags: list[str] = []
    if tls is not None:
        tls_flags = ["--cert-file", str(tls.cert), "--key-file", str(tls.key), "--trusted-ca-file", str(tls.ca)]
        tls_flags.append("--client-cert-auth")
    data_dir = Path(tempfile.mkdtemp(prefix="stratus-etcd-"))
    client_port, peer_port = free_port(), free_port()
    client_url = f"{'https' if tls else 'http'}://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    proc = subprocess.Popen(
        [
            etcd,
            "--name",
            "test",
            "--data-dir",
            str(data_dir),
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"test={peer_url}",
            "--heartbeat-interval",
            "10",
            "--election-timeout",
            "100",
            *tls_flags,
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=(data_dir / "etcd.log").open("wb"),
    )
    context = _health_context(tls)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"etcd exited: {(data_dir / 'etcd.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{client_url}/health", timeout=1, context=context) as resp:
                if b'"true"' in resp.read():
                    return EtcdServer(proc, data_dir, client_url)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("etcd did not become healthy")

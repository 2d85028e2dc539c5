"""One process the launcher runs and restarts: its command line, log, backoff and last registration."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.launcher.backoff import Backoff
from services.launcher.children import spawn
from services.launcher.stackfile import ServiceEntry


@dataclass
class Supervised:
    binary: str  # "etcd" for the local etcd
    host: str
    argv: Callable[[int], list[str]]  # the command line for a port (0: any)
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    endpoint: str = ""  # as last registered by the current or a previous pid
    registered_pid: int = 0

    @property
    def name(self) -> str:
        return self.host

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def start(self) -> None:
        self.proc = spawn(self.argv(self.port), self.log_path)
        self.started_at = time.monotonic()
        self.restart_at = None

    def exit_code(self) -> int | None:
        """The exit code once the current process has exited, else None."""
        return self.proc.poll() if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def registered(self, endpoint: str, pid: int) -> bool:
        """Takes a registration of the current pid; True if it changed what stack.json says."""
        if pid != self.pid or (endpoint, pid) == (self.endpoint, self.registered_pid):
            return False
        self.endpoint, self.registered_pid = endpoint, pid
        self.port = port_of(endpoint) or self.port
        return True

    def entry(self) -> ServiceEntry:
        return ServiceEntry(self.binary, self.host, self.endpoint, self.registered_pid)


def port_of(endpoint: str) -> int:
    """``127.0.0.1:4242`` -> 4242; 0 when there is no port."""
    _, sep, port = endpoint.rpartition(":")
    return int(port) if sep and port.isdigit() else 0

"""What ``stratus up`` was asked to start."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: the CLI imports this module and should start fast
    from services.core.etcd import EtcdTls

FAKE_HOST_KEYS = ("vcpus", "ram_mb", "disk_gb")
MAX_APIS = 16


class LaunchError(RuntimeError):
    """Start-up cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class StackOptions:
    state_dir: Path
    driver: str = "fake"
    computes: int = 1
    schedulers: int = 1
    fake_host: str | None = None
    api_port: int = 8774  # the first api's; the others follow it (8775, ...); 0: free ports for all
    apis: int = 1  # api replicas, hosts api-1..api-N
    etcd: tuple[str, ...] = ()  # an existing cluster; empty: start a local etcd
    lease_ttl: int | None = None
    prefix: str = "/stratus/"
    insecure: bool = False  # no CA: plaintext everywhere (else TLS on the api, mutual TLS between processes and etcd)
    etcd_tls: EtcdTls | None = None  # client TLS towards an external etcd that asks for it
    etcd_quota_bytes: int | None = None  # the local etcd's --quota-backend-bytes; None: DEFAULT_QUOTA_BYTES
    etcd_defrag_interval_s: float | None = None  # the local etcd's routine defragmentation; 0: never

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


def default_prefix() -> str:
    """The children read ``STRATUS_PREFIX`` from the environment they inherit, and so does the launcher."""
    return os.environ.get("STRATUS_PREFIX") or "/stratus/"


def parse_fake_host(text: str) -> str:
    """Checks ``vcpus=V,ram_mb=R,disk_gb=D`` (all three, positive integers) and returns it normalised."""
    sizes: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in FAKE_HOST_KEYS:
            raise ValueError(f"expected vcpus=V,ram_mb=R,disk_gb=D, got {part!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{key} must be a whole number, got {value!r}") from None
        if number <= 0:
            raise ValueError(f"{key} must be positive, got {number}")
        sizes[key] = number
    missing = [key for key in FAKE_HOST_KEYS if key not in sizes]
    if missing:
        raise ValueError(f"expected vcpus=V,ram_mb=R,disk_gb=D; missing {', '.join(missing)}")
    return ",".join(f"{key}={sizes[key]}" for key in FAKE_HOST_KEYS)


SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
SIZE_RE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*")


def parse_size(text: str) -> int:
    """``2GiB``, ``512MiB``, ``64m`` or plain bytes -> bytes (binary units; positive)."""
    match = SIZE_RE.fullmatch(text.lower())
    if match is None or match.group(2) not in SIZE_UNITS:
        raise ValueError(f"expected a size such as 2GiB, 512MiB or 1048576, got {text!r}")
    size = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if size <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return size


def parse_etcd_urls(text: str) -> tuple[str, ...]:
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    if not urls:
        raise ValueError("give at least one etcd URL, e.g. http://127.0.0.1:2379")
    return tuple(url if "://" in url else f"http://{url}" for url in urls)

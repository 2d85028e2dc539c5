"""``DIR/stack.json``: how clients find a running stack. Written atomically, readable only by its owner.

::

    {"api": "127.0.0.1:8774", "apis": ["127.0.0.1:8774", "127.0.0.1:8775"],   # every api replica, api-1 first
     "etcd": ["http://127.0.0.1:2379"], "token": "<admin>",
     "demo_token": "<demo>", "state_dir": "/home/me/.local/state/stratus",
     "ca_cert": "/home/me/.local/state/stratus/tls/ca.pem",   # "" with --insecure
     "etcd_tls": {"ca": ".../tls/ca.pem", "cert": ".../tls/role-launcher.pem",   # {} for a plaintext etcd
                  "key": ".../tls/role-launcher-key.pem"},                       # (the operator's identity)
     "services": [{"binary": "compute", "host": "compute-1", "endpoint": "127.0.0.1:40123", "pid": 4242}]}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.core.etcd import EtcdTls

STACK_FILE = "stack.json"


class BadStackFile(ValueError):
    pass


@dataclass(frozen=True)
class ServiceEntry:
    binary: str
    host: str
    endpoint: str
    pid: int


@dataclass(frozen=True)
class StackInfo:
    api: str
    etcd: list[str]
    token: str
    demo_token: str
    state_dir: str
    services: list[ServiceEntry] = field(default_factory=list)
    ca_cert: str = ""  # the CA that signed the api's certificate; empty: the api is plaintext
    apis: list[str] = field(default_factory=list)  # every api replica (api-1..api-N); ``api`` is the first
    etcd_tls: dict[str, str] = field(default_factory=dict)  # ca, cert, key for ``stratus etcd``; {}: plaintext

    def __post_init__(self) -> None:
        if not self.apis:  # one api, or a file written before there were replicas
            object.__setattr__(self, "apis", [self.api])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def etcd_client_tls(self) -> EtcdTls | None:
        """``etcd_tls`` as a Store takes it: the stack's etcd with the operator's identity (None: plaintext)."""
        if not self.etcd_tls:
            return None
        from services.core.etcd import EtcdTls  # here: a CLI command that never reaches etcd does not load it

        files = self.etcd_tls
        return EtcdTls(Path(files["ca"]), Path(files["cert"]), Path(files["key"]))

    @classmethod
    def from_json(cls, data: Any) -> StackInfo:
        if not isinstance(data, dict) or not isinstance(data.get("api"), str):
            raise BadStackFile("it has no api address")
        services = [ServiceEntry(**entry) for entry in data.get("services", [])]
        return cls(
            api=data["api"],
            etcd=list(data.get("etcd", [])),
            token=str(data.get("token", "")),
            demo_token=str(data.get("demo_token", "")),
            state_dir=str(data.get("state_dir", "")),
            services=services,
            ca_cert=str(data.get("ca_cert") or ""),
            apis=apis_of(data),
            etcd_tls=etcd_tls_of(data),
        )


def apis_of(data: dict[str, Any]) -> list[str]:
    apis = data.get("apis") or []
    if not isinstance(apis, list) or not all(isinstance(a, str) and a for a in apis):
        raise BadStackFile("its apis are not a list of addresses")
    return list(apis)


def etcd_tls_of(data: dict[str, Any]) -> dict[str, str]:
    files = data.get("etcd_tls") or {}
    if not isinstance(files, dict) or not all(isinstance(files.get(k), str) for k in ("ca", "cert", "key") if files):
        raise BadStackFile("its etcd_tls is not {ca, cert, key}")
    return {k: str(files[k]) for k in ("ca", "cert", "key")} if files else {}


def stack_path(state_dir: Path) -> Path:
    return state_dir / STACK_FILE


def write_stack(path: Path, info: StackInfo) -> None:
    """Writes a temporary file (mode 0600) beside ``path`` and renames it over, so readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info.to_json(), fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def read_stack(path: Path) -> StackInfo | None:
    """The stack described at ``path``; None when there is no file. Raises ``BadStackFile`` on garbage."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return StackInfo.from_json(json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadStackFile(f"{path} is not a valid stack file: {exc}") from exc
    except BadStackFile as exc:
        raise BadStackFile(f"{path} is not a valid stack file: {exc}") from exc


def remove_stack(path: Path) -> None:
    path.unlink(missing_ok=True)

"""The fake driver's domains (``FakeDomain``), and their file (``<fake_domains_dir>/<host>.json``)
when asked for one.

Kept in the file, the fake "hypervisor" outlives the compute process as a real one does (a SIGKILLed
compute comes back to the domains it left), and a test can read what runs on each host without a
compute RPC: ``read_domains(path)``. The file is replaced atomically on every change.

::

    {"host": "compute-1", "domains": {"<instance id>": {"power_state": 1, "spec": {...}, ...}}}
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.compute.drivers.base import InstanceSpec
from services.core.private_files import private_dir


@dataclass(slots=True)
class FakeDomain:
    spec: InstanceSpec
    power_state: int
    resized_from: InstanceSpec | None = None
    console: list[str] = field(default_factory=list)


def _spec_json(spec: InstanceSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["user_data"] = base64.b64encode(spec.user_data).decode()
    data["metadata"] = dict(spec.metadata)
    data["public_keys"] = dict(spec.public_keys)
    return data


def _spec(data: dict[str, Any]) -> InstanceSpec:
    return InstanceSpec(**{**data, "user_data": base64.b64decode(data.get("user_data", ""))})


def save_domains(path: Path, host: str, domains: dict[str, FakeDomain]) -> None:
    body = {
        iid: {
            "power_state": d.power_state,
            "spec": _spec_json(d.spec),
            "resized_from": _spec_json(d.resized_from) if d.resized_from else None,
            "console": d.console,
        }
        for iid, d in domains.items()
    }
    private_dir(path.parent)  # user data and keys are in the specs
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": host, "domains": body}))
    tmp.replace(path)


def read_domains(path: Path) -> dict[str, dict[str, Any]]:
    """Instance id -> what the file says of its domain; {} when there is no file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return dict(data.get("domains", {}))


def load_domains(path: Path) -> dict[str, FakeDomain]:
    out = {}
    for iid, d in read_domains(path).items():
        resized = d.get("resized_from")
        out[iid] = FakeDomain(_spec(d["spec"]), int(d["power_state"]), _spec(resized) if resized else None,
                              list(d.get("console", [])))  # fmt: skip
    return out

"""The fake driver's domains (``FakeDomain``), and their file (``<fake_domains_dir>/<host>.json``)
when asked for one.

Kept in the file, the fake "hypervisor" outlives the compute process as a real one does (a SIGKILLed
compute comes back to the domains it left), and a test can read what runs on each host without a
compute RPC: ``read_domains(path)``. The file is replaced atomically on every change.

The file is the fake hypervisor's truth: a change made to it from outside (``forget``: an operator's
``virsh undefine``, a removed instance directory) is what the driver sees at its next call. Each
instance's disk is listed apart from its domain (``disks``), so a domain can vanish while its disk
remains; a file without ``disks`` (an older one) has a disk for every domain.

::

    {"host": "compute-1", "domains": {"<instance id>": {"power_state": 1, "spec": {...}, ...}},
     "disks": ["<instance id>", ...]}
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


def save_domains(path: Path, host: str, domains: dict[str, FakeDomain], disks: set[str] | None = None) -> None:
    """Writes the file (atomically); ``disks`` None: a disk for every domain."""
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
    _write(path, {"host": host, "domains": body, "disks": sorted(set(domains) if disks is None else disks)})


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
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


def load_disks(path: Path) -> set[str]:
    """The instance ids with a disk; every domain's when the file lists no disks (an older file)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return set()
    disks = data.get("disks")
    return set(data.get("domains", {}) if disks is None else disks)


def forget(path: Path, instance_id: str, *, disk_too: bool = False) -> None:
    """Removes the instance's domain from the file behind its compute's back, as an operator's
    ``virsh destroy; virsh undefine`` would; ``disk_too``: its disk as well (its instance directory
    removed). The compute sees it at its next call to the driver."""
    data = json.loads(path.read_text())
    data.setdefault("disks", sorted(data.get("domains", {})))
    data["domains"].pop(instance_id, None)
    if disk_too:
        data["disks"] = [i for i in data["disks"] if i != instance_id]
    _write(path, data)

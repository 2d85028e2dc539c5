"""What the stack's logs say it had to repair during a chaos run: not violations (the invariants are
checked on the state), but the windows the repairs closed — each should be rare, and some should
not happen at all once every flow is an owned record (issue 8)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

REPAIRS = {
    # the compute's sweep removed a domain no record places on its host (a second copy, or a delete
    # that was done while the host was down)
    "orphan_domain_removed": re.compile(r"removing the orphaned domain of (\S+) from"),
    # the api's claims audit (services/api/admin/claim_audit.py) found a claim and a record out of step
    "audit_released_claim": re.compile(r"claim audit: released the orphan claim of server (\S+)"),
    "audit_readded_claim": re.compile(r"claim audit: re-added the missing claim of server (\S+)"),
    # a delete while the server's compute was down: the record goes, the host cleans up later
    "local_delete": re.compile(r"is down: deleting (\S+) locally"),
}


def scan_repairs(logs_dir: Path) -> dict[str, list[str]]:
    """Repair kind -> the instance ids each log line names (in log order, per file)."""
    out: dict[str, list[str]] = defaultdict(list)
    for path in sorted(logs_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            msg = _message(line)
            for kind, pattern in REPAIRS.items():
                found = pattern.search(msg)
                if found:
                    out[kind].append(found.group(1))
    return dict(out)


def count_errors(logs_dir: Path) -> dict[str, int]:
    """ERROR and CRITICAL lines, and tracebacks, per log file."""
    out: dict[str, int] = {}
    for path in sorted(logs_dir.glob("*.log")):
        text = path.read_text(errors="replace")
        n = text.count('"level": "ERROR"') + text.count('"level": "CRITICAL"') + text.count("Traceback (most recent")
        if n:
            out[path.stem] = n
    return out


def _message(line: str) -> str:
    if not line.startswith("{"):
        return line
    try:
        return str(json.loads(line).get("msg", ""))
    except json.JSONDecodeError:
        return line

"""The processes of a running ``stratus up`` that chaos may hurt, found and signalled by pid only.

The services' pids are those ``stack.json`` lists (re-read before every kill: the launcher rewrites
it once a restarted process has registered again). The local etcd is not in ``stack.json``: it is
the launcher's child whose command line names the stack's etcd data dir. A pid is signalled only
if it is still a child of the launcher, so a stale entry can never hit a recycled pid.
"""

from __future__ import annotations

import json
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path

KINDS = ("api", "scheduler", "compute", "servicegroup")


@dataclass(frozen=True)
class Victim:
    kind: str
    host: str
    pid: int


def children_of(pid: int) -> list[int]:
    """The live children of ``pid`` (every thread's, from /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError):
        return []


def parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


class StackProcs:
    def __init__(self, state_dir: Path, launcher_pid: int) -> None:
        self.state_dir = state_dir
        self.launcher_pid = launcher_pid

    def services(self) -> list[Victim]:
        """The services stack.json lists whose pid is still a live child of the launcher."""
        try:
            info = json.loads((self.state_dir / "stack.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return []
        out = []
        for entry in info.get("services", []):
            pid = int(entry.get("pid") or 0)
            if pid and parent_of(pid) == self.launcher_pid and not is_zombie(pid):
                out.append(Victim(str(entry["binary"]), str(entry["host"]), pid))
        return out

    def pick(self, kind: str, rng: random.Random) -> Victim | None:
        live = [v for v in self.services() if v.kind == kind]
        return rng.choice(live) if live else None

    def etcd_pid(self) -> int:
        """The launcher's etcd child (its ``--data-dir`` is the stack's), or 0 (an external etcd)."""
        data_dir = str(self.state_dir / "etcd")
        for pid in children_of(self.launcher_pid):
            argv = cmdline(pid)
            if "--data-dir" in argv and argv[argv.index("--data-dir") + 1 :][:1] == [data_dir] and not is_zombie(pid):
                return pid
        return 0

    def kill(self, victim: Victim) -> bool:
        """SIGKILL, if ``victim.pid`` is still the launcher's child; True if sent."""
        return self._signal(victim.pid, signal.SIGKILL)

    def stop(self, pid: int) -> bool:
        return self._signal(pid, signal.SIGSTOP)

    def cont(self, pid: int) -> bool:
        return self._signal(pid, signal.SIGCONT)

    def _signal(self, pid: int, sig: signal.Signals) -> bool:
        if parent_of(pid) != self.launcher_pid:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

"""Child processes: started in their own session with their output in a log file, told to die with
the launcher, and stopped by pid only.

"Die with the launcher" is ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the child. Rather than a
``preexec_fn`` (unsafe once the launcher has threads, as gRPC's), each child starts as a tiny
Python trampoline that sets it and then execs the real command; the signal survives ``execve``
and the pid stays the same.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from services.core.private_files import private_dir

TRAMPOLINE = """\
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
if os.getppid() != int(sys.argv[1]):  # the launcher died before prctl took effect
    sys.exit(143)
os.execv(sys.argv[2], sys.argv[2:])
"""


def with_parent_death_signal(argv: Sequence[str], parent_pid: int) -> list[str]:
    """``argv`` run through the trampoline; ``argv[0]`` must be a path (it is exec'd as is)."""
    return [sys.executable, "-S", "-E", "-c", TRAMPOLINE, str(parent_pid), *argv]


def spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Starts ``argv`` in a session of its own with stdout and stderr appended to ``log_path``."""
    private_dir(log_path.parent)  # logs hold user data (console lines, request details): 0700, files 0600
    with log_path.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            with_parent_death_signal(argv, os.getpid()),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def send(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signals our child by its pid, unless it has already exited (and been reaped)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return


async def _until_exited(procs: Sequence[subprocess.Popen[bytes]], timeout_s: float, hurry: asyncio.Event) -> None:
    deadline = time.monotonic() + timeout_s
    # Polling: a Popen's exit is no asyncio event, and a thread per child is not worth it here.
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline and not hurry.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def stop_all(procs: Sequence[subprocess.Popen[bytes]], grace_s: float, hurry: asyncio.Event) -> None:
    """SIGTERM to each, up to ``grace_s`` (less once ``hurry`` is set) for them to exit, then SIGKILL."""
    for proc in procs:
        send(proc, signal.SIGTERM)
    await _until_exited(procs, grace_s, hurry)
    for proc in procs:
        send(proc, signal.SIGKILL)
    await _until_exited(procs, 5.0, asyncio.Event())


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])

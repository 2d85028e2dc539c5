#!/usr/bin/env python3
"""Run a command as a child of a process that is a "child subreaper" and reaps everything.

Usage: subreaper.py COMMAND [ARGS...]

Why: libvirtd double-forks QEMU, so QEMU's parent is whoever adopts orphans. PID 1 on
these machines reaps orphans about 1.3 s late, which makes every `virsh destroy` take
~1.5 s (libvirt waits for QEMU to be reaped). With PR_SET_CHILD_SUBREAPER set here, the
orphans are re-parented to this process instead, which reaps them at once (~0.2 s destroy).

SIGTERM, SIGINT and SIGHUP are forwarded to the command; this process exits with the
command's exit status when the command itself exits.
"""

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print(f"subreaper: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}", file=sys.stderr)
        return 1

    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as e:
            print(f"subreaper: cannot run {sys.argv[1]}: {e}", file=sys.stderr)
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)

    # Reap every child (the command and any orphans re-parented to us) as soon as it dies.
    while True:
        try:
            child, status = os.wait()
        except ChildProcessError:
            return 0
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code  # killed by signal N -> 128+N


if __name__ == "__main__":
    sys.exit(main())

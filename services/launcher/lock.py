"""One launcher per state dir: an advisory lock on ``DIR/launcher.lock`` held while it runs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from services.core.private_files import private_dir
from services.launcher.options import LaunchError


class StateDirLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "launcher.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        private_dir(self.path.parent)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise LaunchError(
                f"another `stratus up` (pid {holder}) is running with state dir {self.path.parent}; "
                "stop it, or give this one another --state-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

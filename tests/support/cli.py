"""The real ``stratus`` CLI in a process, as a user runs it: no ``STRATUS_*`` variable of the test
run's own environment leaks in, only those a test passes."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.stack import ROOT


def stratus(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRATUS_")}
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout_s, check=False)  # fmt: skip

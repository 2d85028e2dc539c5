"""Metrics leave the process as the standard variables say: a loop restart, counted by an
instrument made before the provider was set, reaches the console exporter (in a process of its
own: a meter provider is set once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.stack import ROOT

PROGRAM = """
from opentelemetry.sdk.resources import Resource
from services.core import supervise
from services.core.metrics_export import setup_metrics, shutdown_metrics
setup_metrics(Resource.create({}))
supervise._count("demo-loop")
shutdown_metrics()
"""


def test_a_counted_restart_is_exported() -> None:
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "console"}
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, timeout=60,
                         check=True, text=True)  # fmt: skip
    assert '"stratus.loop.restarts"' in out.stderr and '"loop": "demo-loop"' in out.stderr

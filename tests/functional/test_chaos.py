"""Chaos (issue 8): SIGKILL api, scheduler, compute and servicegroup processes and freeze etcd while
creates and deletes run through the public API; afterwards nothing is lost, doubled or stuck, every
ERROR has a fault, the claims are exactly the placed servers and every fake domain belongs to a
server placed on its host (tests/support/chaos.py, chaos_check.py). bench/chaos_bench.py is the
longer run."""

from __future__ import annotations

from pathlib import Path

from tests.support.chaos import ChaosPlan, chaos_env, chaos_stack_args, run_chaos
from tests.support.stack import start_stack

HOST_SIZE = "vcpus=512,ram_mb=262144,disk_gb=10000"


def test_nothing_lost_doubled_or_stuck_under_kills_and_etcd_freezes(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, *chaos_stack_args(computes=2, schedulers=2, apis=2, host_size=HOST_SIZE),
                        env=chaos_env(tmp_path))  # fmt: skip
    try:
        plan = ChaosPlan(creates=150, deletes=50, kills=9, freezes=2, freeze_s=(2.0, 3.0), chaos_interval_s=2.5)
        report = run_chaos(stack, plan, progress=print)
        print(report.summary())
        assert sum(report.kills.values()) > 0 and report.freezes, report.summary()
        assert not report.violations, f"{report.summary()}\n{stack.log_tail(60)}"
    finally:
        assert stack.stop() == 0, stack.log_tail()

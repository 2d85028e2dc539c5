"""Chaos (issue 8): SIGKILL api, scheduler, compute and servicegroup processes and freeze etcd while
creates and deletes run through the public API; afterwards nothing is lost, doubled or stuck, every
ERROR has a fault, the claims are exactly the placed servers and every fake domain belongs to a
server placed on its host (tests/support/chaos.py, chaos_check.py). bench/chaos_bench.py is the
longer run."""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.support.chaos import ChaosPlan, chaos_env, chaos_stack_args, run_chaos
from tests.support.chaos_procs import KINDS
from tests.support.stack import start_stack

HOST_SIZE = "vcpus=512,ram_mb=262144,disk_gb=10000"


def test_nothing_lost_doubled_or_stuck_under_kills_and_etcd_freezes(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, *chaos_stack_args(computes=2, schedulers=2, apis=2, host_size=HOST_SIZE),
                        env=chaos_env(tmp_path))  # fmt: skip
    try:
        seed = int(os.environ.get("STRATUS_CHAOS_SEED") or random.randrange(1 << 32))
        print(f"chaos seed {seed} (replay: STRATUS_CHAOS_SEED={seed})")
        plan = ChaosPlan(creates=150, deletes=50, kills=9, freezes=2, freeze_s=(2.0, 3.0), chaos_interval_s=2.5,
                         seed=seed)  # fmt: skip
        report = run_chaos(stack, plan, progress=print)
        print(report.summary())
        why = f"seed {seed}\n{report.summary()}"
        assert all(report.kills[kind] >= 1 for kind in KINDS) and report.freezes, why  # every kind died once
        assert not report.violations, f"{why}\n{stack.log_tail(60)}"
        audit = {kind: ids for kind, ids in report.repairs.items() if kind.startswith("audit_")}
        assert not audit, f"the claims audit had to repair {audit}: {why}"  # claims never drift from records
    finally:
        assert stack.stop() == 0, stack.log_tail()

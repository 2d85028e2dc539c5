"""Chaos at scale: 1,000 creates and their deletes through the public API while processes die.

Starts ``stratus up --driver fake`` (two api replicas when the launcher has ``--apis``), then runs
tests/support/chaos.py: creates with request_ids, a third of them deleted again, while random api,
scheduler, compute and servicegroup processes are SIGKILLed and etcd is frozen for a few seconds.
Prints what it saw (the summary, then one JSON line): creates/s, time to settle, violations by
kind with their evidence, kills by kind. Exits 1 if any invariant was violated.

    .venv/bin/python -m bench.chaos_bench --servers 1000 --apis 2 --schedulers 2 --computes 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from tests.support.chaos import ChaosPlan, ChaosReport, chaos_env, chaos_stack_args, launcher_supports, run_chaos
from tests.support.stack import start_stack


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=1000, help="creates (each its own request_id)")
    p.add_argument("--deletes", type=int, default=None, help="of those, deleted again (default: a third)")
    p.add_argument("--apis", type=int, default=2)
    p.add_argument("--schedulers", type=int, default=2)
    p.add_argument("--computes", type=int, default=4)
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--freezes", type=int, default=5)
    p.add_argument("--freeze-s", type=float, nargs=2, default=(2.0, 4.0), metavar=("MIN", "MAX"))
    p.add_argument("--interval", type=float, default=3.0, help="seconds between chaos events (jittered)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--settle", type=float, default=180.0, help="seconds allowed to settle after the chaos")
    p.add_argument("--spawn-delay", type=float, default=0.3, help="seconds a fake spawn takes")
    p.add_argument("--orphan-grace", type=float, default=30.0, help="the computes' orphan_grace_s (as shipped: 30 s)")
    p.add_argument("--reconcile-interval", type=float, default=10.0, help="their reconcile_interval_s (shipped: 10 s)")
    p.add_argument("--host-size", default="vcpus=1024,ram_mb=1048576,disk_gb=100000")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the state dir (logs, etcd) and print its path")
    return p.parse_args()


def figures(report: ChaosReport, args: argparse.Namespace, apis: int) -> dict[str, object]:
    return {
        "bench": "chaos", "servers": args.servers, "apis": apis, "schedulers": args.schedulers,
        "computes": args.computes, "run": report.run_id,
        "creates_answered": report.replied, "creates_found_later": report.found_later,
        "creates_given_up": report.gave_up, "creates_refused": dict(report.refused),
        "creates_per_s": round(report.creates_per_s, 1), "deletes_done": report.deletes_done,
        "deletes_unfinished": report.deletes_unfinished, "kills": dict(report.kills),
        "freezes_s": [round(s, 1) for s in report.freezes], "client_retries": dict(report.retries),
        "workload_s": round(report.workload_s, 1),
        "settle_s": None if report.settle_s is None else round(report.settle_s, 1),
        "servers_at_end": dict(report.servers_at_end), "claims_at_end": report.claims_at_end,
        "domains_at_end": report.domains_at_end, "violations": dict(report.violations_by_kind()),
        "violations_before_settling": dict(Counter(v.kind for v in report.first_violations)),
        "active_without_domain": len(report.active_without_domain),
        "repairs_in_logs": {kind: len(ids) for kind, ids in report.repairs.items()},
        "orphan_grace_s": args.orphan_grace, "reconcile_interval_s": args.reconcile_interval,
    }  # fmt: skip


def main() -> int:
    args = parse_args()
    apis = args.apis if launcher_supports("--apis") else 1
    if apis != args.apis:
        print(f"note: this launcher has no --apis; running {apis} api")
    tmp = Path(tempfile.mkdtemp(prefix="stratus-chaos-"))
    plan = ChaosPlan(
        creates=args.servers, deletes=args.servers // 3 if args.deletes is None else args.deletes,
        kills=args.kills, freezes=args.freezes, freeze_s=(args.freeze_s[0], args.freeze_s[1]),
        chaos_interval_s=args.interval, concurrency=args.concurrency, settle_s=args.settle, seed=args.seed,
    )  # fmt: skip
    stack = start_stack(tmp, *chaos_stack_args(args.computes, args.schedulers, apis, args.host_size),
                        env=chaos_env(tmp, args.spawn_delay, args.orphan_grace, args.reconcile_interval))  # fmt: skip
    try:
        report = run_chaos(stack, plan, progress=print)
    finally:
        code = stack.stop()
        if code != 0:
            print(f"note: the launcher exited with {code}")
        if args.keep:
            print(f"state dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report.summary(max_listed=50))
    print(json.dumps(figures(report, args, apis)))
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())

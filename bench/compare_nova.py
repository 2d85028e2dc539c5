"""Stratus's scheduling core beside Nova's filter and weigher code, in one run, on the same hosts.

    .venv/bin/python bench/compare_nova.py [--hosts 1000 10000] [--decisions 200] [--repeat 3]
                                           [--nova-python /tmp/nova-venv/bin/python]

For each host count: Nova's baseline (``nova_baseline.py``, in its own virtualenv, made by
``setup_nova_venv.sh``) and Stratus's ``core`` mode, each ``--repeat`` times with the same number
of decisions; prints each run's JSON line, then one summary line per host count with the medians,
the ratio of Stratus's decisions per second to Nova's, and whether both chose the same host at
every decision (their ``choices_digest`` agree).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run(python: str, script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([python, str(HERE / script), *args], capture_output=True, text=True, check=True).stdout
    line: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(line), flush=True)
    return line


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nova-python", default="/tmp/nova-venv/bin/python")
    args = parser.parse_args()
    if not Path(args.nova_python).exists():
        sys.exit(f"{args.nova_python} is missing: run 'bash bench/setup_nova_venv.sh' first")
    for n in args.hosts:
        same = ["--hosts", str(n), "--decisions", str(args.decisions)]
        nova = [run(args.nova_python, "nova_baseline.py", *same) for _ in range(args.repeat)]
        ours = [run(sys.executable, "scheduler_bench.py", *same, "--mode", "core") for _ in range(args.repeat)]
        summary = {
            "summary": "stratus core vs nova",
            "hosts": n,
            "decisions": args.decisions,
            "runs": args.repeat,
            "nova_decisions_per_s": median(nova, "decisions_per_s"),
            "stratus_decisions_per_s": median(ours, "decisions_per_s"),
            "nova_p50_ms": median(nova, "p50_ms"),
            "stratus_p50_ms": median(ours, "p50_ms"),
            "nova_p99_ms": median(nova, "p99_ms"),
            "stratus_p99_ms": median(ours, "p99_ms"),
            "same_choices": len({r["choices_digest"] for r in nova + ours}) == 1,
        }
        summary["speedup"] = round(summary["stratus_decisions_per_s"] / summary["nova_decisions_per_s"], 1)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

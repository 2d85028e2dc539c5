"""etcd operations and where the time goes, per create -> ACTIVE (a bench, not a test).

Starts the same fake-driver stack as ``create_active_bench`` with ``bench/etcd_ops_site`` on the
processes' PYTHONPATH (its ``sitecustomize`` logs every unary etcd call and every span of each
process; nothing in services/ changes), creates N servers one after another as that bench does,
and then attributes the calls to each create's window (from CreateServer to just before its
DeleteServer, after a quiet ``--tail`` so the flow's last writes land in it). The same stack sits
idle for ``--idle`` seconds at the end, to tell periodic calls from the create's own.

    .venv/bin/python -m bench.etcd_ops [--servers 20] [--tail 0.5] [--idle 10] [--json FILE]

Prints: etcd calls per create by kind and by (process, kind, caller), the idle rate of each, and
the median time from CreateServer to each milestone (answered, flow's first call, scheduler's
claim, BuildInstance, the compute's ACTIVE write, ACTIVE seen by the client).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from stratus.v1 import servers_pb2
from tests.support.stack import Stack, start_stack

SITE = Path(__file__).resolve().parent / "etcd_ops_site"


def one_create(stack: Stack, name: str, tail_s: float, like_bench: bool) -> dict[str, Any]:
    servers, md = stack.servers, stack.md()
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny")
    marks: dict[str, Any] = {"t0": time.time()}
    server = servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=md)
    marks["answered"] = time.time()
    marks["id"] = server.id
    for event in servers.WatchServers(servers_pb2.WatchServersRequest(id=server.id), metadata=md):
        if event.server.status == servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE:
            marks["active_seen"] = time.time()
            break
        if event.server.status == servers_pb2.ServerStatus.SERVER_STATUS_ERROR:
            raise RuntimeError(f"{name} went to ERROR: {event.server.fault.message}")
    if like_bench:  # as create_active_bench: the delete at once, the next create when it answers
        servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=md)
        marks["t_end"] = time.time()
        return marks
    time.sleep(tail_s)
    marks["t_end"] = time.time()
    servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=md)
    stack.wait_gone(server.id)
    time.sleep(tail_s)
    return marks


def load(ops_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in ops_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    records.sort(key=lambda r: r["t"])
    return records


def caller(rec: dict[str, Any], depth: int = 2) -> str:
    chain = rec.get("callers") or ["?"]
    return " <- ".join(c.rsplit(":", 1)[0] for c in chain[:depth])


def milestones(ops: list[dict[str, Any]], marks: dict[str, Any]) -> dict[str, float]:
    """Milliseconds from CreateServer to each milestone of this create."""
    iid, t0 = marks["id"], marks["t0"]
    out = {"answered": marks["answered"] - t0, "active_seen": marks["active_seen"] - t0}
    flow = [o for o in ops if o["kind"] != "span" and o["t"] >= marks["answered"]
            and any(("flow_owners._drive" in c or "flows." in c) for c in o.get("callers", []))]  # fmt: skip
    if flow:
        out["flow_first_call"] = flow[0]["t"] - t0
    claim = [o for o in ops if o["kind"] == "txn" and "scheduler" in " ".join(o.get("callers", []))
             and any(iid in op for op in o.get("ops", []))]  # fmt: skip
    if claim:
        out["claim_txn_start"] = claim[0]["t"] - t0
        out["claim_txn_done"] = claim[0]["t"] + claim[0]["dt"] - t0
    spans = [o for o in ops if o["kind"] == "span"]
    for s in spans:
        if s["key"].endswith("SelectDestinations") and "select_sent" not in out and s["proc"].startswith("api"):
            out["select_sent"] = s["t"] - t0
            out["select_returned"] = s["t"] + s["dt"] - t0
        if s["key"].endswith("BuildInstance") and s["proc"].startswith("api") and "build_sent" not in out:
            out["build_sent"] = s["t"] - t0
            out["build_returned"] = s["t"] + s["dt"] - t0
        if s["key"].endswith("BuildInstance") and not s["proc"].startswith("api") and "build_received" not in out:
            out["build_received"] = s["t"] - t0
    compute_writes = [o for o in ops if o["kind"] in ("txn", "put") and o["proc"].startswith("compute")
                      and any(f"instances/{iid}" in op for op in [*o.get("ops", []), o["key"]])]  # fmt: skip
    if compute_writes:
        last = compute_writes[-1]
        out["compute_active_write_done"] = last["t"] + last["dt"] - t0
    owner_gone = [o for o in ops if o["kind"] == "txn" and any(f"flow_owners/{iid}" in op for op in o.get("ops", []))
                  and any(op.startswith("delete_range") for op in o.get("ops", []))]  # fmt: skip
    if owner_gone:
        out["let_go_done"] = owner_gone[-1]["t"] + owner_gone[-1]["dt"] - t0
    return {k: round(v * 1000, 2) for k, v in out.items()}


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--computes", type=int, default=2)
    parser.add_argument("--tail", type=float, default=0.5)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument(
        "--like-bench",
        action="store_true",
        help="delete at once and create the next at once, as create_active_bench does: each window "
        "is then a whole create + delete cycle (to the next CreateServer)",
    )
    parser.add_argument("--json", type=Path, help="also write the attributed calls and milestones here")
    parser.add_argument("--timeline", action="store_true", help="print the calls of one create in order")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratus-etcd-ops-") as tmp:
        ops_dir = Path(tmp) / "ops"
        ops_dir.mkdir()
        path = os.pathsep.join(p for p in [str(SITE), os.environ.get("PYTHONPATH", "")] if p)
        env = {"PYTHONPATH": path, "STRATUS_ETCD_OPS_DIR": str(ops_dir)}
        stack = start_stack(Path(tmp) / "stack", "--driver", "fake", "--computes", str(args.computes), env=env)
        try:
            one_create(stack, "warm-up", args.tail, args.like_bench)
            creates = [one_create(stack, f"ops-{i}", args.tail, args.like_bench) for i in range(args.servers)]
            if args.like_bench:
                for c, after in itertools.pairwise(creates):
                    c["t_end"] = after["t0"]
                creates = creates[:-1]
            time.sleep(args.tail)
            idle_from = time.time()
            time.sleep(args.idle)
            idle_to = time.time()
        finally:
            stack.stop()
        records = load(ops_dir)
    if not records:
        raise SystemExit("no etcd calls were logged: was sitecustomize imported by the stack's processes?")
    calls = [r for r in records if r["kind"] != "span"]
    n = len(creates)
    window_s = sum(c["t_end"] - c["t0"] for c in creates)
    idle = [r for r in calls if idle_from <= r["t"] < idle_to]
    idle_rate = Counter((r["proc"].split("-")[0], r["kind"], caller(r)) for r in idle)
    per_kind: Counter[str] = Counter()
    per_caller: Counter[tuple[str, str, str]] = Counter()
    per_create_totals = []
    stones = []
    for c in creates:
        mine = [r for r in records if c["t0"] <= r["t"] < c["t_end"]]
        mine_calls = [r for r in mine if r["kind"] != "span"]
        per_create_totals.append(len(mine_calls))
        for r in mine_calls:
            per_kind[r["kind"]] += 1
            per_caller[(r["proc"].split("-")[0], r["kind"], caller(r))] += 1
        stones.append(milestones(mine, c))
    idle_s = idle_to - idle_from
    report = {
        "servers": n,
        "window_s_per_create": round(window_s / n, 3),
        "calls_per_create_median": statistics.median(per_create_totals),
        "per_kind": {k: round(v / n, 2) for k, v in per_kind.most_common()},
        "per_caller": [
            {
                "proc": p,
                "kind": k,
                "caller": who,
                "per_create": round(v / n, 2),
                "idle_expected": round(idle_rate[(p, k, who)] / idle_s * window_s / n, 2),
            }
            for (p, k, who), v in per_caller.most_common()
        ],
        "idle_calls_per_s": round(len(idle) / idle_s, 2),
        "milestones_ms_median": {
            k: round(statistics.median(s[k] for s in stones if k in s), 2)
            for k in sorted(
                {k for s in stones for k in s}, key=lambda k: statistics.median(s[k] for s in stones if k in s)
            )
        },
    }
    print(f"{n} creates; etcd calls per create (window {report['window_s_per_create']} s, median total "
          f"{report['calls_per_create_median']}); idle: {report['idle_calls_per_s']} calls/s")  # fmt: skip
    print("by kind:", report["per_kind"])
    print(f"{'per create':>10} {'idle exp.':>9}  proc       kind         caller")
    for row in report["per_caller"]:
        print(f"{row['per_create']:>10} {row['idle_expected']:>9}  {row['proc']:<10} {row['kind']:<12} {row['caller']}")
    print("milestones, ms from CreateServer (median):")
    for k, v in report["milestones_ms_median"].items():
        print(f"  {k:<28} {v:>8}")
    if args.timeline:
        c = creates[len(creates) // 2]
        print(f"timeline of {c['id']} (ms from CreateServer, duration):")
        for r in records:
            if c["t0"] <= r["t"] < c["t_end"]:
                extra = f" ops={r['ops']}" if r.get("ops") else ""
                print(f"  {1000 * (r['t'] - c['t0']):8.2f} {1000 * r['dt']:7.2f}  {r['proc']:<12} {r['kind']:<12} "
                      f"{r['key'][:60]}  [{caller(r, 3)}]{extra}"[:400])  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"report": report, "creates": creates, "milestones": stones}, indent=1))


if __name__ == "__main__":
    main()

"""A chaos run against a ``stratus up --driver fake`` stack, for the suite and for bench/.

Many creates (each with its own ``request_id``) and some deletes go through the public API while a
chaos task SIGKILLs random api, scheduler, compute and servicegroup processes (by pid, from
``stack.json``; the launcher restarts them) and freezes etcd for a few seconds (SIGSTOP, SIGCONT).
The client (chaos_client.py) behaves as a real one: a create that fails with UNAVAILABLE,
DEADLINE_EXCEEDED or ABORTED is sent again with the same ``request_id``, to the next api replica;
a delete is sent again until the server is NOT_FOUND. Then, bounded by ``settle_s``, the
invariants of tests/support/chaos_check.py are checked until they hold; what still fails at the
deadline is reported with its evidence.

    stack = start_stack(dir, *chaos_stack_args(...), env=chaos_env(dir))
    report = run_chaos(stack, ChaosPlan(creates=150, deletes=50, kills=10, freezes=2))
    print(report.summary())
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from services.core.etcd import Store
from services.launcher.stackfile import read_stack, stack_path
from tests.support import chaos_check, chaos_logs
from tests.support.chaos_check import RID_KEY, Expected, Snapshot
from tests.support.chaos_client import ApiPool, Client
from tests.support.chaos_procs import KINDS, StackProcs
from tests.support.chaos_report import ChaosPlan, ChaosReport
from tests.support.stack import ROOT, Stack

__all__ = ["ChaosPlan", "ChaosReport", "chaos_env", "chaos_stack_args", "launcher_supports", "run_chaos"]
DOMAINS_DIR = "fake-domains"


# ---- the stack -------------------------------------------------------------------------------
def launcher_supports(flag: str) -> bool:
    """Whether ``stratus up`` takes ``flag`` (e.g. ``--apis``) in this checkout."""
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "up", "--help"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False)  # fmt: skip
    return flag in out.stdout


def chaos_stack_args(computes: int, schedulers: int, apis: int, host_size: str) -> list[str]:
    args = ["--driver", "fake", "--computes", str(computes), "--schedulers", str(schedulers), "--fake-host", host_size]
    if apis > 1 and launcher_supports("--apis"):
        args += ["--apis", str(apis)]
    return args


def chaos_env(
    state_dir: Path, spawn_delay_s: float = 0.3, orphan_grace_s: float = 10.0, reconcile_interval_s: float = 2.0
) -> dict[str, str]:
    """Fake domains kept in files (they outlive a killed compute, and the checks read them); builds
    that take a moment (so kills land mid-build); the computes' orphan sweep (by default every 30 s,
    after 120 s of grace) within the settle time: a delete done while its compute is down leaves
    the domain to that sweep, as Nova's local delete does."""
    return {
        "STRATUS_FAKE_DOMAINS_DIR": str(state_dir / DOMAINS_DIR),
        "STRATUS_FAKE_SPAWN_DELAY_S": str(spawn_delay_s),
        "STRATUS_RECONCILE_INTERVAL_S": str(reconcile_interval_s),
        "STRATUS_ORPHAN_GRACE_S": str(orphan_grace_s),
    }


# ---- chaos ------------------------------------------------------------------------------------
def chaos_events(plan: ChaosPlan, rng: random.Random) -> list[str]:
    """Kills spread over every kind (each kind before any twice), freezes among them, never first."""
    kinds: list[str] = []
    while len(kinds) < plan.kills:
        kinds += rng.sample(KINDS, len(KINDS))
    events = kinds[: plan.kills]
    for _ in range(plan.freezes):
        events.insert(rng.randint(1, len(events)), "etcd-freeze")
    return events


async def run_events(procs: StackProcs, plan: ChaosPlan, report: ChaosReport, rng: random.Random) -> None:
    t0 = time.monotonic()
    for event in chaos_events(plan, rng):
        await asyncio.sleep(plan.chaos_interval_s * rng.uniform(0.6, 1.4))
        at = time.monotonic() - t0
        if event == "etcd-freeze":
            await _freeze(procs, plan, report, rng, at)
        else:
            await _kill(procs, event, report, rng, at)


async def _kill(procs: StackProcs, kind: str, report: ChaosReport, rng: random.Random, at: float) -> None:
    deadline = time.monotonic() + 15.0
    while True:
        victim = procs.pick(kind, rng)
        if victim is not None and procs.kill(victim):
            report.kills[kind] += 1
            report.kill_log.append(f"t+{at:5.1f}s SIGKILL {victim.host} (pid {victim.pid})")
            return
        if time.monotonic() > deadline:  # every process of that kind is restarting
            report.kill_log.append(f"t+{at:5.1f}s no live {kind} to kill (all restarting)")
            return
        await asyncio.sleep(0.5)


async def _freeze(procs: StackProcs, plan: ChaosPlan, report: ChaosReport, rng: random.Random, at: float) -> None:
    pid = procs.etcd_pid()
    if not pid or not procs.stop(pid):
        report.kill_log.append(f"t+{at:5.1f}s no etcd process of the launcher's to freeze")
        return
    seconds = rng.uniform(*plan.freeze_s)
    try:
        await asyncio.sleep(seconds)
    finally:
        procs.cont(pid)
    report.freezes.append(seconds)
    report.kill_log.append(f"t+{at:5.1f}s SIGSTOP etcd (pid {pid}) for {seconds:.1f}s")


# ---- the run ----------------------------------------------------------------------------------
async def _workload(client: Client, plan: ChaosPlan, run_id: str, spread_s: float, rng: random.Random) -> float:
    """Every create (paced over ``spread_s``), each chosen one deleted after its reply; returns the
    time from the first create to the last create's answer."""
    gate = asyncio.Semaphore(plan.concurrency)
    to_delete = set(rng.sample(range(plan.creates), min(plan.deletes, plan.creates)))
    t0 = time.monotonic()
    last_create = [t0]

    async def one(n: int) -> None:
        await asyncio.sleep(spread_s * n / max(plan.creates, 1))
        rid = f"chaos-{run_id}-{n}"
        async with gate:
            server_id = await client.create(n, rid)
            last_create[0] = max(last_create[0], time.monotonic())
        if server_id and n in to_delete:
            await asyncio.sleep(rng.uniform(0.0, 2.0))
            async with gate:
                await client.delete(n, server_id, rid)

    await asyncio.gather(*(one(n) for n in range(plan.creates)))
    return last_create[0] - t0


async def _snapshot(client: Client, store: Store, domains_dir: Path) -> Snapshot:
    servers = await client.list_all()
    return Snapshot(servers, await chaos_check.read_claims(store), chaos_check.read_all_domains(domains_dir))


async def _settle(client: Client, store: Store, domains_dir: Path, report: ChaosReport) -> Snapshot:
    t0 = time.monotonic()
    first = True
    while True:
        snap = await _snapshot(client, store, domains_dir)
        report.violations = chaos_check.check(client.expected, snap)
        if first:
            report.first_violations, first = list(report.violations), False
        if not report.violations:
            report.settle_s = time.monotonic() - t0
            return snap
        if time.monotonic() - t0 > report.plan.settle_s:
            return snap
        await asyncio.sleep(2.0)


async def run_chaos_async(
    state_dir: Path, launcher_pid: int, plan: ChaosPlan, progress: Callable[[str], None] | None = None
) -> ChaosReport:
    info = read_stack(stack_path(state_dir))
    assert info is not None, f"no stack.json in {state_dir}"
    rng = random.Random(plan.seed)
    run_id = f"{rng.randrange(16**6):06x}"
    report = ChaosReport(run_id, plan)
    say = progress or (lambda _msg: None)
    pool = ApiPool(state_dir)
    user = Client(pool, info.demo_token, plan, report, rng)
    admin = Client(pool, info.token, plan, report, rng)
    admin.expected = user.expected
    store = Store(list(info.etcd), os.environ.get("STRATUS_PREFIX") or "/stratus/", info.etcd_client_tls())
    await store.connect()
    try:
        spread_s = max(plan.kills + plan.freezes, 1) * plan.chaos_interval_s
        say(f"chaos {run_id}: {plan.creates} creates over ~{spread_s:.0f}s, {plan.kills} kills, {plan.freezes} freezes")
        t0 = time.monotonic()
        chaos = asyncio.create_task(run_events(StackProcs(state_dir, launcher_pid), plan, report, rng))
        report.create_phase_s = await _workload(user, plan, run_id, spread_s, rng)
        await chaos
        report.workload_s = time.monotonic() - t0
        say(f"workload done in {report.workload_s:.1f}s; settling (at most {plan.settle_s:g}s)")
        snap = await _settle(admin, store, state_dir / DOMAINS_DIR, report)
    finally:
        await store.close()
        await pool.close()
    _tally(report, user.expected, snap)
    report.repairs = chaos_logs.scan_repairs(state_dir / "logs")
    report.log_errors = chaos_logs.count_errors(state_dir / "logs")
    return report


def _tally(report: ChaosReport, expected: Expected, snap: Snapshot) -> None:
    present = {s.metadata.get(RID_KEY, "") for s in snap.servers}
    report.found_later = len({rid for rid in expected.unanswered if rid in present})
    report.servers_at_end = Counter(chaos_check.status_name(s) for s in snap.servers)
    report.active_without_domain = chaos_check.active_without_domain(snap)
    report.claims_at_end = sum(len(hosts) for hosts in snap.claims.values())
    report.domains_at_end = sum(len(hosts) for hosts in snap.domains.values())


def run_chaos(stack: Stack, plan: ChaosPlan, progress: Callable[[str], None] | None = None) -> ChaosReport:
    return asyncio.run(run_chaos_async(stack.state_dir, stack.proc.pid, plan, progress))

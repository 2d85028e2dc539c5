"""A chaos run against a ``stratus up --driver fake`` stack, for the suite and for bench/.

Many creates (each with its own ``request_id``) and some deletes go through the public API while a
chaos task SIGKILLs random api, scheduler, compute and servicegroup processes (by pid, from
``stack.json``; the launcher restarts them) and freezes etcd for a few seconds (SIGSTOP, SIGCONT).
The client behaves as a real one: a create that fails with UNAVAILABLE, DEADLINE_EXCEEDED or
ABORTED (a connection error is UNAVAILABLE) is sent again with the same ``request_id``, to the
next api replica when ``stack.json`` lists several; a delete is sent again until the server is
NOT_FOUND. Then, bounded by ``settle_s``, the invariants of tests/support/chaos_check.py are
checked until they hold; what still fails at the deadline is reported with its evidence.

    stack = start_stack(dir, *chaos_stack_args(...), env=chaos_env(dir))
    report = run_chaos(stack, ChaosPlan(creates=150, deletes=50, kills=10, freezes=2))
    print(report.summary())
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.core.etcd import Store
from stratus.v1 import servers_pb2, servers_pb2_grpc
from tests.support import chaos_check
from tests.support.chaos_check import RID_KEY, Expected, Snapshot, Violation
from tests.support.chaos_procs import KINDS, StackProcs
from tests.support.stack import ROOT, Stack

C = grpc.StatusCode
RETRYABLE = {C.UNAVAILABLE, C.DEADLINE_EXCEEDED, C.ABORTED}
DOMAINS_DIR = "fake-domains"


@dataclass
class ChaosPlan:
    creates: int = 150
    deletes: int = 50
    kills: int = 10
    freezes: int = 2
    freeze_s: tuple[float, float] = (2.0, 3.0)
    chaos_interval_s: float = 3.0  # between two chaos events (kills and freezes), jittered
    concurrency: int = 24  # client calls in flight at most
    call_timeout_s: float = 10.0
    op_budget_s: float = 150.0  # how long the client keeps retrying one create or delete
    settle_s: float = 120.0
    seed: int | None = None
    flavor: str = "m1.tiny"
    image: str = "tiny"


@dataclass
class ChaosReport:
    run_id: str
    plan: ChaosPlan
    replied: int = 0
    found_later: int = 0  # creates never answered (or refused) whose server exists
    refused: Counter[str] = field(default_factory=Counter)  # final error codes of unanswered creates
    gave_up: int = 0
    deletes_done: int = 0
    deletes_unfinished: int = 0
    retries: Counter[str] = field(default_factory=Counter)  # "create UNAVAILABLE" -> count
    kills: Counter[str] = field(default_factory=Counter)
    kill_log: list[str] = field(default_factory=list)
    freezes: list[float] = field(default_factory=list)
    workload_s: float = 0.0
    create_phase_s: float = 0.0
    settle_s: float | None = None  # None: still violated at the deadline
    servers_at_end: Counter[str] = field(default_factory=Counter)
    claims_at_end: int = 0
    domains_at_end: int = 0
    violations: list[Violation] = field(default_factory=list)
    active_without_domain: list[str] = field(default_factory=list)

    @property
    def creates_per_s(self) -> float:
        return self.replied / self.create_phase_s if self.create_phase_s else 0.0

    def violations_by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    def summary(self, max_listed: int = 20) -> str:
        p = self.plan
        lines = [
            f"chaos run {self.run_id}: {p.creates} creates, {p.deletes} deletes planned",
            f"  creates: {self.replied} answered, {self.found_later} found later by request_id, "
            f"{self.gave_up} given up, refused {dict(self.refused) or '{}'}",
            f"  creates/s (answered, over {self.create_phase_s:.1f}s): {self.creates_per_s:.1f}",
            f"  deletes: {self.deletes_done} seen through to NOT_FOUND, {self.deletes_unfinished} unfinished",
            f"  client retries: {dict(self.retries) or '{}'}",
            f"  kills: {sum(self.kills.values())} {dict(self.kills)}; etcd freezes: {len(self.freezes)} "
            f"({', '.join(f'{s:.1f}s' for s in self.freezes)})",
            f"  workload {self.workload_s:.1f}s; settled "
            + (f"after {self.settle_s:.1f}s" if self.settle_s is not None else f"NOT within {p.settle_s:g}s"),
            f"  at the end: servers {dict(self.servers_at_end)}, {self.claims_at_end} claims, "
            f"{self.domains_at_end} fake domains",
            f"  violations: {len(self.violations)} {dict(self.violations_by_kind()) or ''}",
        ]
        lines += [f"    {v.kind} {v.subject}: {v.evidence}" for v in self.violations[:max_listed]]
        if len(self.violations) > max_listed:
            lines.append(f"    ... and {len(self.violations) - max_listed} more")
        if self.active_without_domain:
            ids = self.active_without_domain
            lines.append(f"  note: {len(ids)} ACTIVE servers with no domain on their host: {ids[:10]}")
        lines += [f"  {entry}" for entry in self.kill_log]
        return "\n".join(lines)


# ---- the stack -------------------------------------------------------------------------------
def launcher_supports(flag: str) -> bool:
    """Whether ``stratus up`` takes ``flag`` (e.g. ``--apis``) in this checkout."""
    out = subprocess.run([sys.executable, "-m", "services.core.cli.main", "up", "--help"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False)  # fmt: skip
    return flag in out.stdout


def chaos_stack_args(computes: int, schedulers: int, apis: int, host_size: str) -> list[str]:
    args = ["--driver", "fake", "--computes", str(computes), "--schedulers", str(schedulers), "--fake-host", host_size]
    if apis > 1 and launcher_supports("--apis"):
        args += ["--apis", str(apis)]
    return args


def chaos_env(state_dir: Path, spawn_delay_s: float = 0.3) -> dict[str, str]:
    """Fake domains kept in files (they outlive a killed compute, and the checks read them); builds
    that take a moment (so kills land mid-build); the computes' orphan sweep within the settle time."""
    return {
        "STRATUS_FAKE_DOMAINS_DIR": str(state_dir / DOMAINS_DIR),
        "STRATUS_FAKE_SPAWN_DELAY_S": str(spawn_delay_s),
        "STRATUS_RECONCILE_INTERVAL_S": "2",
        "STRATUS_ORPHAN_GRACE_S": "10",
    }


# ---- the client ------------------------------------------------------------------------------
class ApiPool:
    """aio channels to every api replica ``stack.json`` lists (re-read at most once a second)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._endpoints: list[str] = []
        self._read_at = 0.0

    def endpoints(self) -> list[str]:
        if not self._endpoints or time.monotonic() - self._read_at > 1.0:
            try:
                info = json.loads((self.state_dir / "stack.json").read_text())
                apis = info.get("apis") or [info["api"]]
                self._endpoints = [a if isinstance(a, str) else str(a["endpoint"]) for a in apis]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass  # the launcher is rewriting it; keep the last we read
            self._read_at = time.monotonic()
        return self._endpoints

    def servers(self, n: int) -> servers_pb2_grpc.ServersStub:
        eps = self.endpoints()
        ep = eps[n % len(eps)]
        if ep not in self._channels:
            self._channels[ep] = grpc.aio.insecure_channel(ep)
        return servers_pb2_grpc.ServersStub(self._channels[ep])

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()


def retry_after(exc: grpc.aio.AioRpcError, attempt: int, rng: random.Random) -> float:
    """The server's RetryInfo delay if it gave one, else capped jittered exponential backoff."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:
        status = None
    for detail in status.details if status else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    return float(min(0.2 * 2**attempt, 2.0) * rng.uniform(0.5, 1.0))


class Client:
    def __init__(self, pool: ApiPool, token: str, plan: ChaosPlan, report: ChaosReport, rng: random.Random) -> None:
        self.pool = pool
        self.md = [("authorization", f"Bearer {token}")]
        self.plan = plan
        self.report = report
        self.rng = rng
        self.expected = Expected()

    async def create(self, n: int, rid: str) -> str:
        """The server id the api answered, or "" (refused for good, or given up)."""
        spec = servers_pb2.Server(
            name=rid, flavor_id=self.plan.flavor, image_id=self.plan.image, metadata={RID_KEY: rid}
        )
        req = servers_pb2.CreateServerRequest(server=spec, request_id=rid)
        deadline = time.monotonic() + self.plan.op_budget_s
        attempt = 0
        while True:
            try:
                reply = await self.pool.servers(n + attempt).CreateServer(
                    req, metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    self.report.refused[f"{exc.code().name}: {exc.details()}"[:120]] += 1
                    self.expected.unanswered.add(rid)
                    return ""
                self.report.retries[f"create {exc.code().name}"] += 1
                if time.monotonic() > deadline:
                    self.report.gave_up += 1
                    self.expected.unanswered.add(rid)
                    return ""
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            self.expected.replied[rid] = reply.id
            self.report.replied += 1
            return str(reply.id)

    async def delete(self, n: int, server_id: str, rid: str) -> None:
        deadline = time.monotonic() + self.plan.op_budget_s
        attempt = 0
        while time.monotonic() < deadline:
            try:
                await self.pool.servers(n + attempt).DeleteServer(
                    servers_pb2.DeleteServerRequest(id=server_id), metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == C.NOT_FOUND:
                    break
                self.report.retries[f"delete {exc.code().name}"] += 1
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            if await self._gone(n, server_id, min(20.0, max(0.0, deadline - time.monotonic()))):
                break
            attempt += 1
        else:
            self.expected.undeleted[server_id] = rid
            self.report.deletes_unfinished += 1
            return
        self.expected.deleted[server_id] = rid
        self.report.deletes_done += 1

    async def _gone(self, n: int, server_id: str, within_s: float) -> bool:
        """Polls GetServer until NOT_FOUND (True) or ``within_s`` passes (False)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                await self.pool.servers(n).GetServer(
                    servers_pb2.GetServerRequest(id=server_id), metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == C.NOT_FOUND:
                    return True
                n += 1  # another replica
            await asyncio.sleep(0.5)
        return False

    async def list_all(self) -> list[servers_pb2.Server]:
        """Every server of every project (admin), retried while the api answers UNAVAILABLE."""
        out: list[servers_pb2.Server] = []
        token, attempt = "", 0
        while True:
            req = servers_pb2.ListServersRequest(page_size=1000, page_token=token, all_projects=True)
            try:
                page = await self.pool.servers(attempt).ListServers(req, metadata=self.md, timeout=30)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt > 60:
                    raise
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            out += page.servers
            token = page.next_page_token
            if not token:
                return out


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
    while True:
        snap = await _snapshot(client, store, domains_dir)
        report.violations = chaos_check.check(client.expected, snap)
        if not report.violations:
            report.settle_s = time.monotonic() - t0
            return snap
        if time.monotonic() - t0 > report.plan.settle_s:
            return snap
        await asyncio.sleep(2.0)


async def run_chaos_async(
    state_dir: Path, launcher_pid: int, plan: ChaosPlan, progress: Callable[[str], None] | None = None
) -> ChaosReport:
    info: dict[str, Any] = json.loads((state_dir / "stack.json").read_text())
    rng = random.Random(plan.seed)
    run_id = f"{rng.randrange(16**6):06x}"
    report = ChaosReport(run_id, plan)
    say = progress or (lambda _msg: None)
    pool = ApiPool(state_dir)
    user = Client(pool, info["demo_token"], plan, report, rng)
    admin = Client(pool, info["token"], plan, report, rng)
    admin.expected = user.expected
    store = Store(list(info["etcd"]), os.environ.get("STRATUS_PREFIX") or "/stratus/")
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

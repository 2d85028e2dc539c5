"""The claims audit: a server holds a claim on host H exactly when its record names H.

Every writer keeps that in one transaction (``services/core/claims.py``), so in normal operation
the audit finds nothing. It runs in the api (the process that owns the records and their flows)
every ``claim_audit_interval_s``, and repairs what it finds:

- an orphan claim (no record, or a record naming another host or none): released;
- a record naming a host that holds no claim for it: the claim re-added from the record's
  resources (both sizes while a resize is not settled).

A round reads page by page, spread over half its interval: each host's usage and the records its
claims name, then each page of records and the usages of the hosts they name. Each repair is one
transaction comparing the record's mod revision as read and the host's usage as read just before,
so the finding still holds when it lands: several api replicas may audit at once, and a scan that
raced a placement (records and usages are read one after the other) repairs nothing wrong, its
compare fails and the next round looks again. Each repair is logged at WARNING
with the server and the host, and counted (``stratus.claims.audit.repairs`` by ``kind``, and
``ClaimAudit.repairs`` in-process). A claim or record changed within ``grace_s`` is left to the
next round: no path writes one without the other any more, the grace only covers a writer that
would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import metrics

from services.core import claims, keys
from services.core.errors import StratusError
from services.core.etcd import AMBIGUOUS, PAGE_KEYS, Store
from services.core.supervise import cancel, spawn_supervised
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)

ORPHAN = "orphan_claim"
MISSING = "missing_claim"
GRACE_S = 5.0
MAX_REPAIRS_PER_TXN = 100  # etcd refuses more than --max-txn-ops (default 128) compares

Records = dict[str, tuple[state_pb2.InstanceRecord, int]]  # instance id -> (record, mod revision)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # ORPHAN or MISSING
    instance_id: str
    host: str
    why: str


@dataclass
class AuditResult:
    """One round: what it repaired, and the findings it left because they moved meanwhile."""

    repaired: list[Finding]
    moved: int = 0


class ClaimAudit:
    def __init__(self, store: Store, grace_s: float = GRACE_S) -> None:
        self._store = store
        self.grace_s = grace_s
        self.repairs: Counter[str] = Counter()  # kind -> repairs made by this process
        self._counter = metrics.get_meter("stratus").create_counter(
            "stratus.claims.audit.repairs", unit="1", description="claims released or re-added by the audit"
        )
        self._task: asyncio.Task[None] | None = None

    # ---- one round --------------------------------------------------------------------------
    async def check(self) -> list[Finding]:
        """What a round would repair, repairing nothing (for a test or a chaos run: it should be
        empty once the flows are done; while they run, a finding may be a race of the two reads)."""
        return [f async for found, _ in self._batches() for f in found]

    async def run_once(self, spread_s: float = 0.0) -> AuditResult:
        """One round, page by page (hosts' usages, then records), its pages spread over about
        ``spread_s`` seconds so that no round reads everything at once."""
        result = AuditResult([])
        async for findings, records in self._batches(spread_s):
            by_host: dict[str, list[Finding]] = {}
            for finding in findings:
                by_host.setdefault(finding.host, []).append(finding)
            for host, found in sorted(by_host.items()):
                for start in range(0, len(found), MAX_REPAIRS_PER_TXN):
                    chunk = found[start : start + MAX_REPAIRS_PER_TXN]
                    repaired = await self._repair(host, chunk, records)
                    if repaired is None:
                        result.moved += len(chunk)
                    else:
                        result.repaired.extend(repaired)
                        self._count(repaired)
        if result.moved:
            log.info("claim audit: %d finding(s) moved while being repaired; the next round looks again", result.moved)
        return result

    async def _batches(self, spread_s: float = 0.0) -> AsyncIterator[tuple[list[Finding], Records]]:
        """Findings a page at a time, with the records they were found on: each host's orphan claims
        (the records its claims name, read by id), then each page of records' missing claims (the
        usages of the hosts they name, read by host)."""
        pages = 2 + (await self._store.count(keys.HOSTS) + await self._store.count(keys.INSTANCES)) // PAGE_KEYS
        pause = spread_s / pages
        async for page in self._store.scan(keys.HOSTS):
            for kv in page.kvs:
                host, kind = keys.split_host(kv.key)
                if kind == keys.USAGE:
                    usage = state_pb2.HostUsage.FromString(kv.value)
                    records = await self._records(list(usage.claims))
                    yield self._orphans(host, usage, records), records
            await asyncio.sleep(pause)
        async for page in self._store.scan(keys.INSTANCES):
            records = {kv.key.removeprefix(keys.INSTANCES): (state_pb2.InstanceRecord.FromString(kv.value),
                                                              kv.mod_revision) for kv in page.kvs}  # fmt: skip
            yield self._missing(await self._usages({r.server.host for r, _ in records.values()}), records), records
            await asyncio.sleep(pause)

    async def _usages(self, hosts: set[str]) -> dict[str, state_pb2.HostUsage]:
        names = sorted(h for h in hosts if h)
        kvs = await self._store.get_many([keys.host_usage(h) for h in names])
        return {h: state_pb2.HostUsage.FromString(kv.value) for h, kv in zip(names, kvs, strict=True) if kv}

    async def _records(self, ids: list[str]) -> Records:
        kvs = await self._store.get_many([keys.instance(i) for i in ids])
        return {i: (state_pb2.InstanceRecord.FromString(kv.value), kv.mod_revision)
                for i, kv in zip(ids, kvs, strict=True) if kv}  # fmt: skip

    def _orphans(self, host: str, usage: state_pb2.HostUsage, records: Records) -> list[Finding]:
        settled = time.time() - self.grace_s
        found = []
        for instance_id, claim in usage.claims.items():
            held = records.get(instance_id)
            if held is not None and held[0].server.host == host:
                continue
            if _seconds(claim.created_at) > settled or (held and _seconds(held[0].server.updated_at) > settled):
                continue
            why = "no server record" if held is None else f"the record names {held[0].server.host or 'no host'!r}"
            found.append(Finding(ORPHAN, instance_id, host, why))
        return found

    def _missing(self, usages: dict[str, state_pb2.HostUsage], records: Records) -> list[Finding]:
        settled = time.time() - self.grace_s
        found = []
        for instance_id, (record, _) in records.items():
            host = record.server.host
            if not host or instance_id in usages.get(host, state_pb2.HostUsage()).claims:
                continue
            if _seconds(record.server.updated_at) > settled:
                continue
            found.append(Finding(MISSING, instance_id, host, "the host holds no claim for it"))
        return found

    async def _repair(self, host: str, found: list[Finding], records: Records) -> list[Finding] | None:
        """One transaction: the host's usage as read now, and every record as scanned. What it
        repaired (a finding the usage no longer shows is left out), or None if anything moved."""
        store = self._store
        usage, usage_revision = await claims.read_usage(store, host)
        compares = [store.cmp_mod(keys.host_usage(host), usage_revision)]
        repaired = []
        for f in found:
            held = records.get(f.instance_id)
            if f.kind == ORPHAN and f.instance_id in usage.claims:
                del usage.claims[f.instance_id]
            elif f.kind == MISSING and held is not None and f.instance_id not in usage.claims:
                usage.claims[f.instance_id].CopyFrom(claims.claim_of(held[0]))
            else:
                continue
            compares.append(store.cmp_mod(keys.instance(f.instance_id), held[1] if held else 0))
            repaired.append(f)
        if not repaired:
            return []
        try:
            ok, _ = await store.txn(compares, [store.op_put(keys.host_usage(host), usage.SerializeToString())])
        except AMBIGUOUS as exc:  # the next round sees whether it landed
            log.warning("claim audit: the repair on %s had no answer (%s); the next round looks again", host, exc)
            return None
        return repaired if ok else None

    def _count(self, repaired: list[Finding]) -> None:
        for f in repaired:
            self.repairs[f.kind] += 1
            self._counter.add(1, {"kind": f.kind})
            if f.kind == ORPHAN:
                log.warning("claim audit: released the orphan claim of server %s on host %s (%s)",
                            f.instance_id, f.host, f.why)  # fmt: skip
            else:
                log.warning("claim audit: re-added the missing claim of server %s on host %s (%s)",
                            f.instance_id, f.host, f.why)  # fmt: skip

    # ---- the periodic loop ------------------------------------------------------------------
    def start(self, interval_s: float) -> None:
        """Audits every ``interval_s`` seconds (the first round after one interval), until ``stop``."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await self.run_once(spread_s=interval_s / 2)
                except (*AMBIGUOUS, ConnectionError, grpc.aio.AioRpcError, StratusError) as exc:
                    log.warning("claim audit failed (%s); trying again in %.0f s", exc, interval_s)

        self._task = spawn_supervised("claim-audit", loop)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9

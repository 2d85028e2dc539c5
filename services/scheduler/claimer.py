"""Committing claims to etcd: optimistic, serialised per host, batched, compare-and-swap, each with
the server's record naming its host in the same transaction.

A decision's claim is pre-applied at once (``pending``: the host table and per-host states count
it), so decisions made while it is in flight see it. Claims wait in one queue; a pump takes a
batch of hosts that have no transaction in flight (all queued claims of a host together, so
claims on one host never race each other in this process) and commits them in ONE transaction:
per host, compare the usage's mod revision and put the usage with the new claims; per server
group, the same on ``server_groups/<id>`` with the new placements; per claim, the same on the
server's record (``instances/<id>``) with ``server.host`` set. So a server holds a claim exactly
when its record names the host (``services/core/claims.py``): a claim is only written for a
record that exists, is not being deleted and names no other host; the records of a batch are read
in one round trip before it is planned. A few batches may be in flight at once, on disjoint keys.

A claim decided against the usage revision it is swapped against goes as it is; otherwise (the
host changed under it, in another process) it is checked again with the per-host filters against
the fresh usage first. A lost swap refreshes the hosts that changed from the transaction's own
failure reads and puts the claims back in the queue; a claim whose host no longer fits, whose
host is gone, or whose group changed is handed back to the manager to decide again; one whose
server is gone or being deleted, or was placed on another host meanwhile, is handed back as such.
A request never fails because of a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence

from services.core import instances, keys
from services.core.backoff import SETTLE_S, backoff
from services.core.claims import Totals
from services.core.errors import Unavailable, state_store_full
from services.core.etcd import AMBIGUOUS, Store, is_store_full
from services.scheduler.claim_plan import (
    Fresh,
    GroupPlan,
    HostPlan,
    Outcome,
    PendingClaim,
    Plan,
    RecordPlan,
    check_record,
    know_record,
    ranges,
)
from services.scheduler.groups import GroupCache
from services.scheduler.host_state import NO_TOTALS, HostState, HostStateCache, add_totals
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import HostTable
from stratus.state.v1 import state_pb2

__all__ = ["Claimer", "Outcome", "PendingClaim"]

log = logging.getLogger(__name__)

# Keys (hosts + groups + records) per transaction; etcd refuses more than --max-txn-ops (default 128).
MAX_BATCH_KEYS = 120
MAX_INFLIGHT = 4
MAX_AMBIGUOUS = 3

Fits = Callable[[HostState, SchedulingRequest], bool]


def commit_error(exc: Exception) -> Unavailable:
    """What the claims of a batch that failed to commit answer: etcd out of space keeps its reason
    (STATE_STORE_FULL: the api's flow waits, never a fault); anything else is a plain Unavailable."""
    if is_store_full(exc):
        return state_store_full()
    return exc if isinstance(exc, Unavailable) else Unavailable(f"could not commit the claim: {exc}")


class Claimer:
    def __init__(
        self,
        store: Store,
        hosts: HostStateCache,
        groups: GroupCache,
        table: HostTable,
        fits: Fits,
        *,
        max_inflight: int = MAX_INFLIGHT,
        max_batch_keys: int = MAX_BATCH_KEYS,
    ) -> None:
        self._store, self._hosts, self._groups, self._table, self._fits = store, hosts, groups, table, fits
        self._max_inflight, self._max_batch_keys = max_inflight, max_batch_keys
        self._queue: deque[PendingClaim] = deque()
        self._by_host: dict[str, list[PendingClaim]] = {}
        self._pending: dict[str, Totals] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump_scheduled = False
        self._stopped = False
        hosts.listen(self._on_state)

    # ---- the manager's side -----------------------------------------------------------------
    def submit(
        self, host: str, claim: state_pb2.Claim, request: SchedulingRequest, group: tuple[str, int] | None,
        *, held: bool = False, record: tuple[state_pb2.InstanceRecord, int] | None = None,
    ) -> asyncio.Future[Outcome]:  # fmt: skip
        """Pre-applies the claim and queues it; the future says how it ended. ``held``: the server
        holds a claim on ``host`` already (a retried request), only its record may need the host.
        ``record``: the server's record and mod revision as the caller read them (else read here)."""
        _, revision = self._hosts.usage_of(host)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        group_id, group_revision = group if group is not None else ("", 0)
        pc = PendingClaim(host, claim, request, revision, group_id, group_revision, future, held)
        if record is not None:
            pc.record, pc.record_revision, pc.record_known = record[0], record[1], True
        if self._stopped:
            future.set_exception(Unavailable("the scheduler is stopping"))
            return future
        self._by_host.setdefault(host, []).append(pc)
        if group_id:
            self._groups.add_pending(group_id, claim.instance_id, host)
        self._update_pending(host)
        self._queue.append(pc)
        self._schedule_pump()
        return future

    def pending(self, host: str) -> Totals:
        """This scheduler's claims on the host that etcd has not confirmed (as far as it knows)."""
        return self._pending.get(host, NO_TOTALS)

    async def stop(self) -> None:
        """Lets the transactions in flight finish; fails the claims not sent yet."""
        self._stopped = True
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            self._finish(self._queue.popleft(), Unavailable("the scheduler is stopping"))

    # ---- pending bookkeeping ----------------------------------------------------------------
    def _on_state(self, host: str, _state: HostState | None) -> None:
        if host in self._by_host:
            self._update_pending(host, force=True)  # the table may have rebuilt the host's row

    def _update_pending(self, host: str, *, force: bool = False) -> None:
        landed = self._hosts.usage_of(host)[0].claims
        total = NO_TOTALS
        for pc in self._by_host.get(host, ()):
            if pc.claim.instance_id not in landed:
                total = add_totals(total, pc.totals)
        if total == self._pending.get(host, NO_TOTALS) and not force:
            return
        if total == NO_TOTALS:
            self._pending.pop(host, None)
        else:
            self._pending[host] = total
        self._table.set_pending(host, total)

    def _finish(self, pc: PendingClaim, result: Outcome | BaseException) -> None:
        claims = self._by_host.get(pc.host)
        if claims is not None:
            with contextlib.suppress(ValueError):
                claims.remove(pc)
            if not claims:
                del self._by_host[pc.host]
        if pc.group_id:
            self._groups.drop_pending(pc.group_id, pc.claim.instance_id)
        self._update_pending(pc.host)
        if not pc.future.done():
            if isinstance(result, BaseException):
                pc.future.set_exception(result)
            else:
                pc.future.set_result(result)

    # ---- batching ---------------------------------------------------------------------------
    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        while len(self._tasks) < self._max_inflight and self._queue and not self._stopped:
            batch = self._take_batch()
            if not batch:
                return
            task = asyncio.create_task(self._commit(batch), name="scheduler.claims")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_batch(self) -> list[PendingClaim]:
        """Queued claims of hosts (and groups) with nothing in flight, all of a host's together
        (as many as the transaction has room for: one key per claim, its server's record)."""
        by_host: dict[str, list[PendingClaim]] = {}
        for pc in self._queue:
            by_host.setdefault(pc.host, []).append(pc)
        taken: list[PendingClaim] = []
        used: set[str] = set()
        for host, claims in by_host.items():
            wanted = {f"h:{host}"} | {f"g:{pc.group_id}" for pc in claims if pc.group_id}
            room = self._max_batch_keys - len(used | wanted) - len(taken)
            if wanted & self._busy or room <= 0:
                continue
            used |= wanted
            self._busy |= wanted
            taken.extend(claims[:room])
        if taken:
            chosen = set(map(id, taken))
            self._queue = deque(pc for pc in self._queue if id(pc) not in chosen)
        return taken

    async def _commit(self, batch: list[PendingClaim]) -> None:
        held = {f"h:{pc.host}" for pc in batch} | {f"g:{pc.group_id}" for pc in batch if pc.group_id}
        requeue: list[PendingClaim] = []
        try:
            requeue = await self._attempt(batch)
        except Exception as exc:  # etcd unreachable, or a bug: fail these requests, never hang them
            quiet = isinstance(exc, AMBIGUOUS) or is_store_full(exc)
            log.warning("claims on %d host(s) failed: %s", len(held), exc, exc_info=not quiet)
            error = commit_error(exc)
            for pc in batch:
                if not pc.future.done():
                    self._finish(pc, error)
        finally:
            self._busy -= held
            self._queue.extendleft(reversed(requeue))
            if self._stopped:
                while self._queue:
                    self._finish(self._queue.popleft(), Unavailable("the scheduler is stopping"))
            else:
                self._schedule_pump()

    # ---- one transaction --------------------------------------------------------------------
    async def _attempt(self, batch: list[PendingClaim]) -> list[PendingClaim]:
        """Commits what still fits; the claims to try again (their hosts changed meanwhile)."""
        await self._read_records([pc for pc in batch if not pc.record_known])
        plan = self._plan(batch)
        if not plan.hosts:
            return plan.deferred
        landed, revision, fresh = await self._txn(plan)
        if landed:
            self._landed(plan, revision, fresh)
            return plan.deferred
        assert fresh is not None
        return self._lost(plan, fresh) + plan.deferred

    async def _read_records(self, batch: Sequence[PendingClaim]) -> None:
        """The records of these claims' servers, in one round trip."""
        if not batch:
            return
        gets = [self._store.op_get(keys.instance(pc.claim.instance_id)) for pc in batch]
        _, resp = await self._store.txn([], gets)
        for pc, read in zip(batch, ranges(resp), strict=True):
            know_record(pc, read)

    def _plan(self, batch: Sequence[PendingClaim]) -> Plan:
        plan = Plan()
        for pc in batch:
            host_plan = plan.hosts.get(pc.host)
            if host_plan is None:
                usage, revision = self._hosts.usage_of(pc.host)
                new = state_pb2.HostUsage()
                new.CopyFrom(usage)
                host_plan = plan.hosts[pc.host] = HostPlan(revision, new, [])
            if pc.claim.instance_id in plan.records:  # the same server twice (a retried request)
                pc.record_known = False
                plan.deferred.append(pc)
                continue
            verdict = self._check(pc, host_plan)
            if verdict is not None:
                self._finish(pc, verdict)
                continue
            if not plan.take(plan.cost(pc, host_plan, self._groups.get(pc.group_id))):
                plan.deferred.append(pc)  # the transaction is full: the next one
                continue
            host_plan.usage.claims[pc.claim.instance_id].CopyFrom(pc.claim)
            host_plan.claims.append(pc)
            self._plan_record(plan, pc)
            if pc.group_id:
                self._plan_group(plan, pc)
        plan.hosts = {h: p for h, p in plan.hosts.items() if p.claims}
        return plan

    def _plan_record(self, plan: Plan, pc: PendingClaim) -> None:
        assert pc.record is not None  # _check_record let it through
        record = state_pb2.InstanceRecord()
        record.CopyFrom(pc.record)
        record.server.host = pc.host
        instances.stamp(record)
        plan.records[pc.claim.instance_id] = RecordPlan(pc.record_revision, record.SerializeToString(), pc)

    def _check(self, pc: PendingClaim, host_plan: HostPlan) -> Outcome | None:
        """None when the claim can go into the transaction; else how it ends now."""
        verdict = check_record(pc)
        if verdict is not None:
            return verdict
        already = pc.claim.instance_id in host_plan.usage.claims
        assert pc.record is not None
        if already and pc.record.server.host == pc.host:
            return Outcome.CLAIMED  # an earlier attempt landed after all
        if pc.held or already:
            return None  # the claim is there: only the record is to name the host
        state = self._hosts.get(pc.host)
        if state is None:
            return Outcome.GONE
        if pc.group_id:
            group = self._groups.get(pc.group_id)
            if group is None or group[1] != pc.group_revision:
                return Outcome.GROUP_CHANGED
        if pc.seen_revision == host_plan.revision:
            return None  # decided against exactly this usage, with the claims before it pending
        # The usage being swapped, with the claims accepted before this one already in it.
        if self._fits(state.with_usage(host_plan.usage, host_plan.revision), pc.request):
            return None
        return Outcome.REFUSED

    def _plan_group(self, plan: Plan, pc: PendingClaim) -> None:
        group_plan = plan.groups.get(pc.group_id)
        if group_plan is None:
            record, revision = self._groups.get(pc.group_id) or (state_pb2.ServerGroupRecord(), 0)
            new = state_pb2.ServerGroupRecord()
            new.CopyFrom(record)
            group_plan = plan.groups[pc.group_id] = GroupPlan(revision, new, [])
        group_plan.record.placements[pc.claim.instance_id] = pc.host
        group_plan.claims.append(pc)

    async def _txn(self, plan: Plan) -> tuple[bool, int, Fresh | None]:
        """(landed, revision, fresh reads): fresh is the keys as read after a lost swap, or after
        an ambiguous outcome (then revision is 0 and the reads are what the cache takes)."""
        store, plan_keys = self._store, plan.keys()
        compares = [store.cmp_mod(k, r) for k, r in zip(plan_keys, plan.revisions(), strict=True)]
        puts = [store.op_put(k, v) for k, v in zip(plan_keys, plan.values(), strict=True)]
        gets = [store.op_get(k) for k in plan_keys]
        delays = backoff(*SETTLE_S)
        for _ in range(MAX_AMBIGUOUS):
            try:
                ok, resp = await store.txn(compares, puts, gets)
                if ok:
                    return True, int(resp.header.revision), None
                return False, 0, ranges(resp)
            except AMBIGUOUS as exc:
                log.warning("claim transaction outcome unknown (%s); reading back", exc)
                with contextlib.suppress(*AMBIGUOUS):
                    _, resp = await store.txn([], gets)
                    fresh = ranges(resp)
                    return self._landed_after_all(plan, fresh), 0, fresh
                await asyncio.sleep(next(delays))
        raise Unavailable("etcd did not settle a claim transaction")

    def _landed_after_all(self, plan: Plan, fresh: Fresh) -> bool:
        """The transaction is atomic: it landed iff the first record is exactly as it wrote it (its
        ``updated_at`` makes the bytes its own)."""
        first = next(iter(plan.records.values()))
        read = plan.split(fresh)[2][0]
        return read is not None and read[0] == first.value

    def _landed(self, plan: Plan, revision: int, fresh: Fresh | None) -> None:
        if fresh is not None:
            self._apply_fresh(plan, fresh)
        else:
            for host, host_plan in plan.hosts.items():
                self._hosts.apply_usage(host, host_plan.usage, revision)
            for group_id, group_plan in plan.groups.items():
                self._groups.apply(group_id, group_plan.record, revision)
            self._forward(plan, revision)
        for pc in plan.claims():
            self._finish(pc, Outcome.CLAIMED)

    def _forward(self, plan: Plan, revision: int) -> None:
        """Claims queued while these committed had counted them as pending: they were decided
        against what is now in etcd, so they need no second check."""
        for pc in self._queue:
            host_plan = plan.hosts.get(pc.host)
            if host_plan is not None and pc.seen_revision == host_plan.revision:
                pc.seen_revision = revision
            group_plan = plan.groups.get(pc.group_id) if pc.group_id else None
            if group_plan is not None and pc.group_revision == group_plan.revision:
                pc.group_revision = revision

    def _apply_fresh(self, plan: Plan, fresh: Fresh) -> None:
        hosts, groups, records = plan.split(fresh)
        for (host, host_plan), read in zip(plan.hosts.items(), hosts, strict=True):
            if read is not None:
                self._hosts.apply_usage(host, state_pb2.HostUsage.FromString(read[0]), read[1])
            elif host_plan.revision != 0:
                self._hosts.forget_usage(host)  # the usage record was deleted
        for group_id, read in zip(plan.groups, groups, strict=True):
            record = state_pb2.ServerGroupRecord.FromString(read[0]) if read is not None else None
            self._groups.apply(group_id, record, read[1] if read is not None else 0)
        for record_plan, read in zip(plan.records.values(), records, strict=True):
            know_record(record_plan.claim, read)

    def _lost(self, plan: Plan, fresh: Fresh) -> list[PendingClaim]:
        """Refreshes what changed; the claims to queue again (groups that changed: decide again)."""
        self._apply_fresh(plan, fresh)
        changed_groups = {
            group_id
            for (group_id, group_plan), read in zip(plan.groups.items(), plan.split(fresh)[1], strict=True)
            if (read[1] if read is not None else 0) != group_plan.revision
        }
        requeue = []
        for pc in plan.claims():
            if pc.group_id in changed_groups:
                self._finish(pc, Outcome.GROUP_CHANGED)
            else:
                requeue.append(pc)
        return requeue

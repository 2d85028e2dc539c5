"""Which api replica drives each server's unfinished flow, so that several replicas never drive one
twice and a flow whose replica dies is taken over within seconds.

A flow is state in etcd, not a task in a process: the server's record says what is left to do
(its task_state, and ``record.resize`` for a resize; ``resume_plan``), its action (action_log.py)
says what was done, step by step. What a replica adds is ownership: ``flow_owners/<id>`` holds
``<replica>:<lease>`` on that replica's lease. The request handler writes the record (and the
action) in one transaction, then ``kick``s: the replica takes ownership when nobody has it, and its
driver runs the plan's flows one after another until the record needs nothing more, then lets go,
comparing the record's revision (a request that set a new task meanwhile keeps it driving).

A replica that dies loses its lease; the keys go with it, and every replica's scan (each
``scan_interval_s``) takes the servers that need work and have no owner. Ownership is a fence, not
advice: every etcd write a driver's flows make also compares that ``flow_owners/<id>`` still holds
this replica's mark (core/write_fence.py, as etcd's ``IsOwner``), so a replica whose loop stalled
past its lease cannot write a step once another has taken over (FenceLost stops its driver). A
replica whose lease is lost stops its drivers the moment its session ends (not at its next look)
and starts again with a new lease: by then another replica may own them. Each step of a flow is
idempotent and compares the record it read, so a step repeated by the next owner is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from services.api.flows.base import is_outage
from services.api.flows.record_events import MISSED, RecordEvents
from services.api.flows.tasks import InstanceTasks
from services.core import instances, keys
from services.core.backoff import backoff
from services.core.errors import NotFound
from services.core.etcd import KV, Store
from services.core.lease import LeaseSession
from services.core.supervise import cancel, spawn_supervised
from services.core.watch import WatchCompacted
from services.core.write_fence import FenceLost, WriteFence, fenced
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)
Flow = Coroutine[Any, Any, None]
IDLE_CAP_S = 5.0
FULL_SCAN_S = 60.0  # with record events, how often a scan still reads every record (a safety net)


class Plans(Protocol):
    """What the flows are (the Servers manager): which records need one, and which one."""

    def needs_work(self, record: state_pb2.InstanceRecord) -> bool: ...

    async def next_flow(self, record: state_pb2.InstanceRecord) -> Flow | None: ...

    async def taking_over(self, record: state_pb2.InstanceRecord) -> None: ...


class FlowRunner(Protocol):
    """Who runs the flows a request set (FlowOwners; a one-process stand-in in the unit tests)."""

    tasks: InstanceTasks

    def bind(self, plans: Plans) -> None: ...

    async def kick(self, instance_id: str, project_id: str) -> None: ...


class FlowOwners:
    def __init__(
        self, store: Store, tasks: InstanceTasks, replica: str, lease_ttl_s: int = 6, scan_interval_s: float = 2.0,
        events: RecordEvents | None = None,
    ) -> None:  # fmt: skip
        """``events``: the record changes, so a scan reads only the servers with work (a full read
        every ``FULL_SCAN_S`` and after a gap in the changes); without, every scan reads them all."""
        self._store = store
        self._events = events
        self._candidates: set[str] = set()
        self._missed = False
        self._full_at = -FULL_SCAN_S
        self._full_revision = 0
        self._pass: tuple[str, int] | None = None  # a full read in progress: (after key, revision)
        if events is not None:
            events.listen(self._on_record)
        self.tasks = tasks
        self._replica = replica
        self._ttl_s = lease_ttl_s
        self._scan_interval_s = scan_interval_s
        self._plans: Plans | None = None
        self._session: LeaseSession | None = None
        self._driving: set[str] = set()
        self._loop: asyncio.Task[None] | None = None
        self._session_watch: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()

    def bind(self, plans: Plans) -> None:
        self._plans = plans

    # ---- ownership ----------------------------------------------------------------------------
    @property
    def _mark(self) -> bytes:
        assert self._session is not None
        return f"{self._replica}:{self._session.lease_id:x}".encode()

    async def _lease(self) -> LeaseSession:
        async with self._opening:
            if self._session is None or self._session.done.is_set():
                if self._session is not None:
                    self._abandon("its lease was lost")
                session = LeaseSession(self._store, self._ttl_s)
                await session.open()
                self._session = session
                self._watch_session(session)
            return self._session

    def _watch_session(self, session: LeaseSession) -> None:
        """The moment ``session`` ends (its lease lost), this replica's drivers stop."""

        async def on_end() -> None:
            await session.done.wait()
            if self._session is session:
                self._abandon("its lease was lost")

        self._session_watch = asyncio.create_task(on_end(), name="flow-owners-session")

    def _abandon(self, why: str) -> None:
        """Stops every driver of this replica: it no longer owns their servers."""
        if self._driving:
            log.warning("replica %s stops driving %d server(s): %s", self._replica, len(self._driving), why)
        for instance_id in list(self._driving):
            self.tasks.cancel(instance_id)
        self._driving.clear()

    async def _take(self, instance_id: str) -> bool:
        """True when this replica owns the server's flow (it took it now, or had it)."""
        session = await self._lease()
        key = keys.flow_owner(instance_id)
        ok, _ = await self._store.txn([self._store.cmp_absent(key)], [self._store.op_put(key, self._mark,
                                                                                        session.lease_id)])  # fmt: skip
        if ok:
            return True
        kv = await self._store.get(key)
        return kv is not None and kv.value == self._mark

    async def _let_go(self, instance_id: str, revision: int | None) -> bool:
        """Gives the server up if its record is still at ``revision`` (None: the record is gone);
        False when the record changed meanwhile (there may be new work)."""
        key = keys.flow_owner(instance_id)
        compares = [self._store.cmp_value(key, self._mark)]
        if revision is not None:
            compares.append(self._store.cmp_mod(keys.instance(instance_id), revision))
        ok, _ = await self._store.txn(compares, [self._store.op_delete(key)])
        if ok:
            return True
        kv = await self._store.get(key)
        return kv is None or kv.value != self._mark  # not ours any more: nothing to give up

    # ---- driving -------------------------------------------------------------------------------
    async def kick(self, instance_id: str, project_id: str) -> None:
        """After a request set work on the server: drive it here unless another replica does. An
        outage here only delays it (the scan takes it once etcd answers)."""
        try:
            if not await self._take(instance_id):
                return
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("could not take the flow of %s now (%s); the scan will", instance_id, exc)
            return
        self._start(instance_id, project_id)

    def _start(self, instance_id: str, project_id: str) -> None:
        if instance_id in self._driving:
            return  # its driver re-reads the record before it lets go
        self._driving.add(instance_id)
        self.tasks.start(instance_id, self._drive(instance_id), "flow", project_id=project_id)

    async def _drive(self, instance_id: str) -> None:
        """Runs what the record needs, flow after flow, until it needs nothing; then lets go. Every
        write it makes is fenced by this replica's ownership of the server."""
        idle = backoff(0.2, IDLE_CAP_S)
        try:
            with fenced(WriteFence(keys.flow_owner(instance_id), self._mark)):
                while True:
                    try:
                        if await self._step(instance_id, idle):
                            return
                    except FenceLost as lost:  # another replica drives it now: stop, write nothing more
                        log.warning("replica %s stops driving %s: %s", self._replica, instance_id, lost)
                        return
                    except Exception as exc:  # a flow that failed is tried again: its steps are idempotent
                        if not is_outage(exc):
                            log.exception("the flow of %s failed; trying again", instance_id)
                        await asyncio.sleep(next(idle))
        finally:
            self._driving.discard(instance_id)

    async def _step(self, instance_id: str, idle: Iterator[float]) -> bool:
        """One flow of the server's plan; True once the server needs nothing and was let go."""
        assert self._plans is not None, "FlowOwners.bind was not called"
        try:
            record, revision = await instances.get(self._store, instance_id)
        except NotFound:
            return await self._let_go(instance_id, None)
        flow = await self._plans.next_flow(record)
        if flow is None:
            return await self._let_go(instance_id, revision)
        await flow
        try:
            _, after = await instances.get(self._store, instance_id)
        except NotFound:  # the flow was a delete
            return await self._let_go(instance_id, None)
        if after == revision:  # the flow changed nothing (waiting on a peer): do not spin
            await asyncio.sleep(next(idle))
        return False

    # ---- taking over ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self._lease()
        await self.scan()
        self._loop = spawn_supervised("flow-owners", self._scan_forever)

    async def scan(self) -> int:
        """Takes the servers that need work and that no live replica drives; returns how many."""
        assert self._plans is not None, "FlowOwners.bind was not called"
        await self._lease()  # a lost one: this replica's drivers stop, and it starts again
        taken = 0
        async for records in self._working():
            for record in await self._unowned(records):
                if record.server.id in self._driving:  # a request's kick may have started it meanwhile
                    continue
                if await self._take(record.server.id):
                    await self._plans.taking_over(record)
                    self._start(record.server.id, record.server.project_id)
                    taken += 1
        return taken

    async def _unowned(self, records: list[state_pb2.InstanceRecord]) -> list[state_pb2.InstanceRecord]:
        """Those not driven here that no live replica owns (or only this replica's own key does):
        their owner keys read together (``Store.get_many``), not one round trip after another."""
        records = [r for r in records if r.server.id not in self._driving]
        owners = await self._store.get_many([keys.flow_owner(r.server.id) for r in records])
        return [r for r, kv in zip(records, owners, strict=True) if kv is None or kv.value == self._mark]

    async def _working(self) -> AsyncIterator[list[state_pb2.InstanceRecord]]:
        """The records with work: those of the full read in progress, then the candidates the
        changes named (not read twice)."""
        seen: set[str] = set()
        async for records in self._full_read():
            seen.update(r.server.id for r in records)
            yield records
        if self._events is not None:
            yield await self._read_candidates([i for i in self._candidates if i not in seen])

    # ---- which servers have work: a full read now and then, else the changes seen since ----------
    async def _full_read(self) -> AsyncIterator[list[state_pb2.InstanceRecord]]:
        """Every record, at one revision, every ``FULL_SCAN_S`` and after a gap in the changes: all
        pages at once the first time (at start, before serving) and without record events, else
        one page a scan, so that the read spreads over the scans that follow."""
        if self._pass is None and self._full_scan_due():
            self._pass = ("", 0)
        whole = not self._full_revision or self._events is None
        while self._pass is not None:
            after, revision = self._pass
            try:
                page = await self._store.page(keys.INSTANCES, start_after=after, revision=revision)
            except WatchCompacted:  # the pass outlived etcd's history: start it again
                self._pass, self._missed = None, True
                return
            yield self._with_work(page.kvs)
            if page.more and page.kvs:
                self._pass = (page.kvs[-1].key, page.revision)
            else:
                self._pass, self._full_revision = None, page.revision
            if not whole:
                return

    def _full_scan_due(self) -> bool:
        now = asyncio.get_running_loop().time()
        if self._events is None or self._missed or now - self._full_at >= FULL_SCAN_S:
            self._missed, self._full_at = False, now  # a gap during the read sets it again
            return True
        return False

    def _with_work(self, kvs: list[KV]) -> list[state_pb2.InstanceRecord]:
        """The records of one page that have work (and they become the candidates)."""
        assert self._plans is not None
        records = [state_pb2.InstanceRecord.FromString(kv.value) for kv in kvs]
        working = [r for r in records if self._plans.needs_work(r)]
        self._candidates.update(r.server.id for r in working)
        return working

    async def _read_candidates(self, ids: list[str]) -> list[state_pb2.InstanceRecord]:
        """The candidates' records that still have work; the others stop being candidates."""
        assert self._plans is not None
        working = []
        for instance_id in ids:
            try:
                record, _ = await instances.get(self._store, instance_id)
            except NotFound:
                self._candidates.discard(instance_id)
                continue
            if self._plans.needs_work(record):
                working.append(record)
            else:
                self._candidates.discard(instance_id)
        return working

    def _on_record(self, instance_id: str, value: bytes | None, revision: int) -> None:
        """A record changed (RecordEvents): a server with work becomes a candidate; one without
        stops being one, unless the change is older than the last full read (which knows better)."""
        if instance_id == MISSED:
            self._missed = True
            return
        needs = False
        if value is not None and self._plans is not None:
            try:
                needs = self._plans.needs_work(state_pb2.InstanceRecord.FromString(value))
            except DecodeError:
                log.error("record of %s does not decode; the next scan reads every record", instance_id)
                self._missed = True
                return
        if needs:
            self._candidates.add(instance_id)
        elif revision > self._full_revision:
            self._candidates.discard(instance_id)

    async def _scan_forever(self) -> None:
        delays = backoff(self._scan_interval_s, 10 * self._scan_interval_s)
        while True:
            try:
                taken = await self.scan()
                if taken:
                    log.info("replica %s took over %d unowned flow(s)", self._replica, taken)
                delays = backoff(self._scan_interval_s, 10 * self._scan_interval_s)
                await asyncio.sleep(self._scan_interval_s)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                await asyncio.sleep(next(delays))

    async def stop(self, drain_s: float) -> None:
        """Lets the flows in flight finish for up to ``drain_s``, then gives up the rest at once
        (the lease is revoked: another replica takes them over without waiting for it to lapse)."""
        await cancel(self._loop)
        await self.tasks.drain(drain_s)
        await cancel(self._session_watch)
        self._abandon("the api is stopping")
        if self._session is not None:
            await self._session.close()

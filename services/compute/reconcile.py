"""Keeps the records in step with what the hypervisor says, as Nova's power-state sync.

- A lifecycle event from the driver (a guest powered itself off, crashed, was paused) makes the
  instance's record follow within a second.
- Every ``reconcile_interval_s`` the same check runs over every instance placed on this host, and
  over every domain this host owns: a domain with no record placing it here is reported, and
  destroyed once it has stayed orphaned for ``orphan_grace_s``.
- A server whose domain vanished (an operator's ``virsh undefine``, a removed instance directory)
  turns SHUTOFF with a fault saying so, or ERROR when its disk is gone too (vanished.py); it keeps its
  host and claim, and a start defines its domain again from the record.

Instances with an operation in progress (the compute's lock held, or a task in the record) are
left alone: the operation records its own outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.compute import transitions, vanished
from services.compute.drivers.base import DriverError, VirtDriver
from services.compute.locks import KeyedLocks
from services.compute.settings import ComputeSettings
from services.core import instances, keys
from services.core.errors import FailedPrecondition, NotFound, StratusError
from services.core.etcd import AMBIGUOUS, Store
from services.core.supervise import spawn_supervised
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
T = servers_pb2.TaskState
V = servers_pb2.VmState
P = servers_pb2.PowerState
# Records in these states have no domain to follow yet (or any more).
UNSYNCED = (V.VM_STATE_BUILDING, V.VM_STATE_ERROR, V.VM_STATE_DELETED)
TRANSIENT = (ConnectionError, *AMBIGUOUS)


class Reconciler:
    def __init__(self, settings: ComputeSettings, store: Store, driver: VirtDriver, locks: KeyedLocks) -> None:
        self.host = settings.host
        self.settings = settings
        self.store = store
        self.driver = driver
        self.locks = locks
        self.orphans: dict[str, float] = {}  # instance id -> when first seen orphaned (monotonic)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # ---- events -------------------------------------------------------------------------------
    def on_power_event(self, instance_id: str, power_state: int) -> None:
        """The driver's callback (on the event loop): sync that instance soon, off the callback."""
        log.info("hypervisor event on %s: server %s is now %s", self.host, instance_id,
                 servers_pb2.PowerState.Name(power_state))  # type: ignore[arg-type]  # fmt: skip
        task = asyncio.create_task(self.sync_one(instance_id), name=f"sync:{instance_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync_one(self, instance_id: str) -> None:
        try:
            record, revision = await instances.get(self.store, instance_id)
        except NotFound:
            return
        except TRANSIENT as exc:
            log.warning("cannot sync server %s now (%s); the next pass will", instance_id, exc)
            return
        await self._sync(record, revision)

    async def _sync(self, record: state_pb2.InstanceRecord, revision: int) -> None:
        """Records the domain's power state unless an operation is in progress on it (``revision``:
        the record's, read before the driver is asked), or that the domain vanished."""
        server = record.server
        if not self._syncable(server):
            return
        try:
            await self._roll_back_resize(server)
            power = await self.driver.get_power_state(server.id)
            if power == P.POWER_STATE_NOSTATE and await self._vanished(record, revision):
                return
        except DriverError as exc:
            log.warning("cannot read the power state of %s on %s: %s", server.id, self.host, exc)
            return
        if power == server.power_state:
            return
        change = transitions.observed(power)

        def mutate(r: state_pb2.InstanceRecord) -> bool | None:
            if not self._syncable(r.server) or r.server.power_state == power:
                return False
            change(r.server)
            return None

        try:
            updated = await instances.update(self.store, server.id, mutate)
        except (NotFound, FailedPrecondition):
            return
        except (StratusError, *TRANSIENT) as exc:
            log.warning("cannot record the power state of %s (%s); the next pass will", server.id, exc)
            return
        log.info("server %s on %s: power state %s (vm_state %s)", server.id, self.host,
                 servers_pb2.PowerState.Name(updated.server.power_state),
                 V.Name(updated.server.vm_state))  # fmt: skip

    async def _vanished(self, record: state_pb2.InstanceRecord, revision: int) -> bool:
        """True when the server's domain is gone from this host (as far as this module follows it):
        the record says so now, as a compare-and-swap at ``revision``, or already did."""
        server = record.server
        if not vanished.followed(server, self.host) or await self.driver.has_domain(server.id):
            return False
        disk = await self.driver.has_disk(server.id)
        if not vanished.to_record(server, disk):
            return True
        try:
            updated = await vanished.record(self.store, record, revision, self.host, disk)
        except (StratusError, *TRANSIENT) as exc:
            log.warning("cannot record that the domain of %s vanished (%s); the next pass will", server.id, exc)
            return True
        if updated is None:
            log.info("server %s changed while its vanished domain was noticed; the next pass looks again", server.id)
            return True
        log.warning("server %s on %s: its domain vanished%s; now %s (it keeps its claim here)", server.id,
                    self.host, "" if disk else " with its disk", V.Name(updated.server.vm_state))  # fmt: skip
        return True

    async def _roll_back_resize(self, server: servers_pb2.Server) -> None:
        """A resize that a crash interrupted left the old disk kept while the record, no longer
        resizing, holds the old size: put the old disk and definition back."""
        if server.vm_state != V.VM_STATE_RESIZED and await self.driver.resize_kept(server.id):
            log.warning("server %s on %s: rolling back a resize that was interrupted", server.id, self.host)
            async with self.locks.hold(server.id):
                await self.driver.revert_resize(server.id)

    def _syncable(self, server: servers_pb2.Server) -> bool:
        return (
            server.host == self.host
            and server.task_state == T.TASK_STATE_UNSPECIFIED
            and server.vm_state not in UNSYNCED
            and not self.locks.busy(server.id)
        )

    # ---- periodic pass -------------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = spawn_supervised("reconcile", self._run)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (DriverError, StratusError, *TRANSIENT) as exc:
                log.warning("reconcile pass on %s failed (%s); trying again later", self.host, exc)
            await asyncio.sleep(self.settings.reconcile_interval_s)

    async def reconcile(self, now: float | None = None) -> None:
        """One pass: power states of the instances placed here, then the orphaned domains. Only
        this host's servers are read: those its usage holds a claim for and those it has a domain
        of (a record that places a server here always has its claim here)."""
        domains = set(await self.driver.list_instances())
        placed: set[str] = set()
        ids = sorted(await self._claimed() | domains)
        for kv in await self.store.get_many([keys.instance(i) for i in ids]):
            if kv is None:
                continue
            record = state_pb2.InstanceRecord.FromString(kv.value)
            if record.server.host == self.host:
                placed.add(record.server.id)
                await self._sync(record, kv.mod_revision)
        await self._remove_orphans(placed, domains, time.monotonic() if now is None else now)
        await self.driver.periodic()

    async def _claimed(self) -> set[str]:
        kv = await self.store.get(keys.host_usage(self.host))
        return set(state_pb2.HostUsage.FromString(kv.value).claims) if kv else set()

    async def _remove_orphans(self, placed: set[str], domains: set[str], now: float) -> None:
        orphans = {i for i in domains - placed if not self.locks.busy(i)}
        for instance_id in orphans - self.orphans.keys():
            log.warning("domain of %s runs on %s but no record places it here; removing it in %.0fs "
                        "unless a record claims it", instance_id, self.host, self.settings.orphan_grace_s)  # fmt: skip
            self.orphans[instance_id] = now
        self.orphans = {i: seen for i, seen in self.orphans.items() if i in orphans}
        for instance_id, seen in list(self.orphans.items()):
            if now - seen >= self.settings.orphan_grace_s:
                await self._remove_orphan(instance_id)

    async def _remove_orphan(self, instance_id: str) -> None:
        async with self.locks.hold(instance_id):
            try:
                record, _ = await instances.get(self.store, instance_id)
            except NotFound:
                record = None
            if record is not None and record.server.host == self.host:
                self.orphans.pop(instance_id, None)
                return
            log.warning("removing the orphaned domain of %s from %s", instance_id, self.host)
            await self.driver.destroy(instance_id)
            self.orphans.pop(instance_id, None)

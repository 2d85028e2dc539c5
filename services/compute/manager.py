"""The compute manager: drives this node's hypervisor and keeps the instance records in step.

The record in etcd is the authority; every call names an instance and is idempotent. Calls on
one instance run one at a time. A failed build cleans up what it made and leaves the record's
states to the caller (the api reschedules). Every call that changes a guest carries a
``transitions.Fence`` (the action it serves, the tasks it runs in): a stale call is answered and
changes nothing, a job of a superseded action is cancelled, and every outcome write compares the
fence in its transaction.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from services.compute import driver_calls, reports, transitions, vanished
from services.compute.deployment import deployment_id
from services.compute.driver_calls import DriverCall, RecordCall, ignoring_record, spec_of
from services.compute.drivers.base import DriverError, InstanceNotFound, InstanceSpec, VirtDriver
from services.compute.hypervisor_check import HypervisorCheck
from services.compute.jobs import Jobs
from services.compute.locks import KeyedLocks
from services.compute.reconcile import Reconciler
from services.compute.settings import ComputeSettings
from services.compute.stats import HostStatsTracker
from services.compute.transitions import Fence
from services.core import compute_report, instances, keys
from services.core.errors import FailedPrecondition, Internal, InvalidArgument, NotFound, StratusError
from services.core.etcd import Store
from services.core.telemetry import tracer
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)

V = servers_pb2.VmState
P = servers_pb2.PowerState
T = servers_pb2.TaskState


class Helper(Protocol):
    """Something the manager starts before the driver and stops after it (the image service)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


# Guest modes every driver so far runs (full hardware virtualisation).
VM_MODES = ("hvm",)


class ComputeManager:
    def __init__(
        self, settings: ComputeSettings, store: Store, driver: VirtDriver, helpers: Sequence[Helper] = ()
    ) -> None:
        self.settings = settings
        self.store = store
        self.driver = driver
        self.host = settings.host
        self._capabilities: state_pb2.HostCapabilities | None = None
        self._locks = KeyedLocks()
        self._jobs = Jobs()
        self.stats = HostStatsTracker(self.host)
        self.reconciler = Reconciler(settings, store, driver, self._locks)
        self.hypervisor_check = HypervisorCheck(self.host, driver, settings.hypervisor_check_interval_s,
                                                self._health_changed)  # fmt: skip
        self._helpers = helpers

    # ---- Manager protocol -------------------------------------------------------------------
    async def start(self) -> None:
        for helper in self._helpers:
            await helper.start()
        await self.driver.start(self.reconciler.on_power_event, await deployment_id(self.store))
        info = await self.driver.capabilities()
        self._capabilities = state_pb2.HostCapabilities(
            host=self.host,
            vcpus=info.vcpus,
            ram_mb=info.ram_mb,
            disk_gb=info.disk_gb,
            hypervisor_type=info.hypervisor_type,
            hypervisor_version=info.hypervisor_version,
            cpu_model=info.cpu_model,
            availability_zone=self.settings.availability_zone,
            architecture=self.settings.architecture,
            trusted=self.settings.trusted,
            vm_modes=VM_MODES,
            reserved_vcpus=self.settings.reserved_host_vcpus,
            reserved_ram_mb=self.settings.reserved_host_memory_mb,
            reserved_disk_gb=self.settings.reserved_host_disk_gb,
            degraded_reason=self.hypervisor_check.reason,
        )
        self.reconciler.start()
        self.hypervisor_check.start()
        log.info(
            "compute %s: %s hypervisor, %d vcpus, %d MiB, %d GB",
            self.host,
            info.hypervisor_type,
            info.vcpus,
            info.ram_mb,
            info.disk_gb,
        )

    async def stop(self) -> None:
        await self.hypervisor_check.stop()
        await self._jobs.stop()
        await self.reconciler.stop()
        await self.stats.close()
        await self.driver.close()
        for helper in self._helpers:
            await helper.stop()
        log.info("compute %s: manager stopped", self.host)

    def _health_changed(self, reason: str) -> None:
        """The hypervisor stopped answering (``reason``) or answers again (""): the capabilities say so."""
        if self._capabilities is not None:
            self._capabilities.degraded_reason = reason
            self.stats.publish_again()

    def lease_records(self) -> dict[str, bytes]:
        """The host's capabilities and stats, and its line in its zone's index (api/zones.py), bound
        to the process lease by the runner."""
        if self._capabilities is None:
            raise RuntimeError("ComputeManager.lease_records() called before start()")
        records = {
            keys.host_capabilities(self.host): self._capabilities.SerializeToString(),
            keys.host_stats(self.host): self.stats.record().SerializeToString(),
        }
        if self._capabilities.availability_zone:
            records[keys.zone_host(self._capabilities.availability_zone, self.host)] = b""
        return records

    # ---- operations ---------------------------------------------------------------------------
    async def accept_build(self, instance_id: str, action_id: str = "") -> None:
        """BuildInstance: the record SPAWNING, then the spawn runs on after the answer and records
        its outcome (ACTIVE, or the report's fault). Asked again while it runs or after it
        reported (a flow taken over by another api), or for an action that is not the record's
        current one, it changes nothing."""
        fence = Fence(action_id)
        if self._jobs.serves(instance_id, action_id) or await self._current(instance_id, fence, "build") is None:
            return
        await self._jobs.cancel(instance_id)  # a job of a superseded action: its outcome would be dropped
        async with self._operation("accept_build", instance_id):
            if self._jobs.running(instance_id):
                return
            record = await self._prepare_build(instance_id, fence)
            if record is not None:
                spawn = self._locked_spawn(instance_id, record, fence)
                job = self._reporting(compute_report.BUILD, instance_id, spawn, fence=transitions.build_outcome(fence))
                self._jobs.start(instance_id, "build", job, action_id)

    async def build_instance(self, instance_id: str, action_id: str = "") -> None:
        """The whole build in one call, its failure raised (what the accepted job runs)."""
        async with self._operation("build_instance", instance_id):
            record = await self._prepare_build(instance_id, Fence(action_id))
            if record is not None:
                await self._spawn_and_finish(instance_id, record, Fence(action_id))

    async def _prepare_build(self, instance_id: str, fence: Fence) -> state_pb2.InstanceRecord | None:
        """The record turned SPAWNING (its old report cleared), or None when there is nothing to
        build: active here already, the outcome reported and waiting for the api, or the call's
        action superseded."""
        record = await self._current(instance_id, fence, "build")
        if record is None or compute_report.reported(record, self.host, compute_report.BUILD):
            return None
        if await self._already_built(instance_id, record):
            log.info("server %s is already active on %s", instance_id, self.host)
            return None
        return await self._update_record(instance_id, transitions.spawning(self.host, instance_id, fence))

    async def _locked_spawn(self, instance_id: str, record: state_pb2.InstanceRecord, fence: Fence) -> None:
        with tracer().start_as_current_span("compute.spawn", attributes={"stratus.instance_id": instance_id}):
            async with self._locks.hold(instance_id):
                await self._spawn_and_finish(instance_id, record, fence)

    async def _spawn_and_finish(self, instance_id: str, record: state_pb2.InstanceRecord, fence: Fence) -> None:
        with self.stats.io_op(instance_id):
            await self._spawn(spec_of(instance_id, await instances.with_details(self.store, record)))
        await self._finish_build(instance_id, transitions.build_outcome(fence))
        self.stats.build_succeeded()
        log.info("server %s spawned on %s", instance_id, self.host)

    async def _report(
        self, instance_id: str, call: str, err: StratusError | None, image_id: str = "", fence: Fence | None = None
    ) -> None:
        """Writes the outcome for the flow that waits for it; a record that moved on (deleted, moved,
        another action or the task given up: ``fence``) needs none."""
        outcome = reports.report(self.host, instance_id, call, err, image_id, fence)
        try:
            await reports.write(self.store, instance_id, outcome)
        except (NotFound, FailedPrecondition) as gone:
            log.info("server %s: %s outcome not recorded (%s)", instance_id, call, gone.message)

    async def destroy_instance(self, instance_id: str, action_id: str = "") -> None:
        """Removes the domain if there is one, for the delete ``action_id`` of a record placed here
        (a record gone or placed elsewhere: the domain is an orphan); the record is the api's to
        delete. A stale call (another action current, or not deleting) changes nothing."""
        try:
            record, _ = await instances.get(self.store, instance_id)
        except NotFound:
            record = None
        deleting = Fence(action_id, (T.TASK_STATE_DELETING,))
        if record is not None and record.server.host == self.host and not deleting.holds(record):
            log.info("server %s: destroy for action %s is stale; nothing to do", instance_id, action_id)
            return
        await self._jobs.cancel(instance_id)  # a spawn or copy under way cleans up as it stops
        async with self._operation("destroy_instance", instance_id):
            await self._driver_call("destroy", instance_id, functools.partial(self.driver.destroy, instance_id))

    async def power_off(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.power_off, instance_id, self.settings.shutdown_timeout_s)
        await self._action("power_off", instance_id, op, transitions.to_stopped, fence)

    async def power_on(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.power_on, instance_id)
        op = vanished.recreating(self.store, self.driver, self.host, spec_of, op)  # a vanished domain defined again
        await self._action("power_on", instance_id, op, transitions.to_started, fence)

    async def reboot(self, instance_id: str, hard: bool, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.reboot, instance_id, hard)
        if hard:  # as Nova's: a vanished domain defined again from the record over its disk
            op = vanished.recreating(self.store, self.driver, self.host, spec_of, op)
        await self._action("reboot", instance_id, op, transitions.to_rebooted, fence)

    async def pause(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.pause, instance_id)
        await self._action("pause", instance_id, op, transitions.to_paused, fence)

    async def unpause(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.unpause, instance_id)
        await self._action("unpause", instance_id, op, transitions.to_started, fence)

    async def suspend(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.suspend, instance_id)
        await self._action("suspend", instance_id, op, transitions.to_suspended, fence)

    async def resume(self, instance_id: str, fence: Fence | None = None) -> None:
        op = ignoring_record(self.driver.resume, instance_id)
        await self._action("resume", instance_id, op, transitions.to_started, fence)

    async def accept_power(self, name: str, instance_id: str, *args: Any, action_id: str = "") -> None:
        """A power call (``power_off``, ``reboot`` ...), accepted at once: the record's new state,
        or the report's fault. Only while the record is at the call's action and in its task: a
        late ask (that action over, another begun) changes nothing."""
        method = getattr(self, name)
        fence = Fence(action_id, transitions.POWER_TASKS[name])
        await self._accept(compute_report.POWER, instance_id, lambda: method(instance_id, *args, fence=fence), fence)

    async def accept_resize(self, instance_id: str, action_id: str = "") -> None:
        """ResizeInstance, accepted at once while the record is at its action and RESIZE_PREP (a
        late ask must not resize again over the disk kept for a revert): RESIZED, or the report's fault."""
        fence = Fence(action_id, (T.TASK_STATE_RESIZE_PREP,))
        await self._accept(compute_report.RESIZE, instance_id, lambda: self.resize(instance_id, fence), fence)

    async def resize(self, instance_id: str, fence: Fence | None = None) -> None:
        """Restarts the domain with the resources the record now holds (the api changed them)."""

        async def op(record: state_pb2.InstanceRecord) -> None:
            with self.stats.io_op(instance_id):
                await self.driver.resize(spec_of(instance_id, await instances.with_details(self.store, record)))

        await self._action("resize", instance_id, op, transitions.to_resized, fence)

    async def confirm_resize(self, instance_id: str, action_id: str = "") -> None:
        op = ignoring_record(self.driver.confirm_resize, instance_id)
        fence = Fence(action_id, (T.TASK_STATE_RESIZE_CONFIRMING,))
        await self._action("confirm_resize", instance_id, op, transitions.to_started, fence)

    async def revert_resize(self, instance_id: str, action_id: str = "") -> None:
        op = ignoring_record(self.driver.revert_resize, instance_id)
        fence = Fence(action_id, (T.TASK_STATE_RESIZE_REVERTING,))
        await self._action("revert_resize", instance_id, op, transitions.to_started, fence)

    async def accept_snapshot(self, instance_id: str, image_id: str, action_id: str = "") -> None:
        """SnapshotInstance, accepted at once while the record is at its action and IMAGE_SNAPSHOT:
        the report says how the copy ended."""
        fence = Fence(action_id, (T.TASK_STATE_IMAGE_SNAPSHOT,))
        copy = lambda: self.snapshot(instance_id, image_id, fence)  # noqa: E731
        await self._accept(compute_report.SNAPSHOT, instance_id, copy, fence, image_id)

    async def _current(self, instance_id: str, fence: Fence | None, call: str) -> state_pb2.InstanceRecord | None:
        """The record, if it places the server here (else FailedPrecondition) and is at ``fence``;
        None for a stale call, which is to change nothing."""
        record, _ = await instances.get(self.store, instance_id)
        transitions.check_owned(record, self.host, instance_id)
        if fence is None or fence.holds(record):
            return record
        log.info("server %s: %s for action %s is stale; nothing to do", instance_id, call, fence.action_id or "-")
        return None

    async def _accept(
        self, call: str, instance_id: str, job: Callable[[], Awaitable[None]], fence: Fence, image_id: str = ""
    ) -> None:
        """Checks the record places the server here at ``fence``, then runs ``job`` after the
        answer and reports its outcome. Asked again while it runs or after it reported, or for a
        superseded action, it changes nothing; a job still running for a superseded action is
        cancelled first (its outcome would be dropped)."""
        if self._jobs.serves(instance_id, fence.action_id) or await self._current(instance_id, fence, call) is None:
            return
        await self._jobs.cancel(instance_id)
        async with self._operation(f"accept_{call}", instance_id):
            record = await self._current(instance_id, fence, call)
            if record is None or self._jobs.running(instance_id):
                return
            if compute_report.reported(record, self.host, call, image_id):
                return
            reporting = self._reporting(call, instance_id, job(), image_id, fence)
            self._jobs.start(instance_id, call, reporting, fence.action_id)

    async def _reporting(
        self, call: str, instance_id: str, job: Awaitable[None], image_id: str = "", fence: Fence | None = None
    ) -> None:
        """Runs an accepted call's ``job`` and reports its fault; a snapshot reports its success too
        (a resize's success is the record RESIZED)."""
        error: StratusError | None = None
        try:
            await job
        except StratusError as err:
            error = err
        except Exception as exc:  # a bug: say so, and still tell the flow (it would wait for hours)
            log.exception("%s of server %s on %s broke", call, instance_id, self.host)
            error = Internal(f"{call} failed on {self.host}: {exc}", reason=f"{call.upper()}_FAILED")
        if error is not None and error.reason == transitions.ACTION_SUPERSEDED:
            log.info("server %s: %s outcome dropped (%s)", instance_id, call, error.message)
            return
        if error is not None or call == compute_report.SNAPSHOT:
            await self._report(instance_id, call, error, image_id, fence)

    async def snapshot(self, instance_id: str, image_id: str, fence: Fence | None = None) -> None:
        """Copies the disk into the image; the record is the api's to change."""
        async with self._operation("snapshot", instance_id):
            record, _ = await instances.get(self.store, instance_id)
            transitions.check_current(record, self.host, instance_id, fence)
            with self.stats.io_op(instance_id):
                snap = functools.partial(self.driver.snapshot, instance_id, image_id)
                await self._driver_call("snapshot", instance_id, snap)

    async def wait_idle(self, instance_id: str) -> None:
        """Until the accepted call running for the instance (if any) is over."""
        await self._jobs.wait(instance_id)

    async def console_output(self, instance_id: str, lines: int) -> str:
        """Needs no lock: reading the console never changes the domain."""
        record, _ = await instances.get(self.store, instance_id)
        transitions.check_owned(record, self.host, instance_id)
        try:
            return await self.driver.console_output(instance_id, lines)
        except InstanceNotFound as err:
            raise FailedPrecondition(
                f"server {instance_id} has no domain on {self.host}", reason="DOMAIN_NOT_FOUND"
            ) from err
        except DriverError as err:
            raise Internal(f"console output failed on {self.host}: {err}", reason="CONSOLE_FAILED") from err

    # ---- helpers ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _operation(self, name: str, instance_id: str) -> AsyncIterator[None]:
        """A traced span around the operation, holding the instance's lock."""
        if not instance_id:
            raise InvalidArgument([("instance_id", "required")])
        attributes = {"stratus.instance_id": instance_id, "stratus.host": self.host}
        with tracer().start_as_current_span(f"compute.{name}", attributes=attributes):
            async with self._locks.hold(instance_id):
                yield

    async def _update(
        self, instance_id: str, change: transitions.Change, fence: Fence | None = None
    ) -> state_pb2.InstanceRecord:
        """Applies ``change`` to the record if it still names this host, is not being deleted and is
        at ``fence`` (through an etcd outage: what the hypervisor did is recorded, not dropped)."""
        return await self._update_record(instance_id, transitions.guarded(self.host, instance_id, change, fence))

    async def _update_record(self, instance_id: str, mutation: transitions.Mutation) -> state_pb2.InstanceRecord:
        return await reports.write(self.store, instance_id, mutation)

    async def _already_built(self, instance_id: str, record: state_pb2.InstanceRecord) -> bool:
        if record.server.vm_state != V.VM_STATE_ACTIVE:
            return False
        return await self.driver.get_power_state(instance_id) == P.POWER_STATE_RUNNING

    async def _spawn(self, spec: InstanceSpec) -> None:
        await driver_calls.spawn(self.driver, self.host, spec, self.stats.build_failed)

    async def _finish_build(self, instance_id: str, fence: Fence) -> None:
        """Marks the record ACTIVE (through an etcd outage); if it was deleted, moved or its build
        given up or superseded meanwhile, removes the domain: a host never keeps a copy the records
        do not place here."""
        try:
            await self._update(instance_id, transitions.to_active, fence)
        except (NotFound, FailedPrecondition) as err:
            log.info("server %s changed while spawning on %s (%s); destroying it", instance_id, self.host, err)
            await self._cleanup(instance_id)
            raise FailedPrecondition(
                f"server {instance_id} was deleted or moved while spawning on {self.host}: {err.message}"
            ) from err

    async def _cleanup(self, instance_id: str) -> None:
        await driver_calls.cleanup(self.driver, self.host, instance_id)

    async def _driver_call(self, action: str, instance_id: str, call: DriverCall) -> None:
        await driver_calls.call(self.host, action, instance_id, call)

    async def _action(
        self, name: str, instance_id: str, call: RecordCall, change: transitions.Change, fence: Fence | None = None
    ) -> None:
        """Checks the record names this host (and is at ``fence``: a stale call does nothing), runs
        the driver call on it, records the outcome (compared with ``fence`` again)."""
        async with self._operation(name, instance_id):
            record = await self._current(instance_id, fence, name)
            if record is None:
                return
            await self._driver_call(name, instance_id, functools.partial(call, record))
            await self._update(instance_id, change, fence)
            log.info("server %s: %s done on %s", instance_id, name, self.host)

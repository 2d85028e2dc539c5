"""Build: schedule (the scheduler claims a host and records it in the server's record, in one
transaction) -> the compute spawns. On a failed host take the server off it (the host cleared and
remembered as tried, the claim and the group placement released: one transaction), try again up to
``max_build_attempts``, then ERROR with a fault that says why. Resumed from SCHEDULING or SPAWNING."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from opentelemetry import trace

from services.api.flows import action_log
from services.api.flows.base import Deps, flow_deadline, past_action_deadline, pause, set_fault, waited_for
from services.api.flows.compute_wait import Decide, Ended, on_compute, reported_error
from services.api.peers import call
from services.core import claims, compute_report, instances
from services.core.backoff import backoff
from services.core.errors import DeadlineExceeded, StratusError, Unavailable, code_of, is_transient
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
V = servers_pb2.VmState
T = servers_pb2.TaskState
# The compute's reasons for a build no other host could do better (the image is unusable, or too big for the flavor).
NOT_RETRYABLE = frozenset({"IMAGE_UNUSABLE", "IMAGE_TOO_BIG"})


def build_failure(tried: Sequence[str], last: StratusError | None) -> StratusError:
    """BUILD_FAILED after every attempt failed, naming the hosts tried."""
    why = last.message if last else "no detail"
    if not tried:
        return StratusError(f"build failed: {why}", reason=last.reason if last else "BUILD_FAILED")
    metadata = {"hosts_tried": ",".join(tried), "attempts": str(len(tried))}
    if last is not None:
        metadata["last_reason"] = last.reason
    return StratusError(f"build failed on {len(tried)} host(s) ({', '.join(tried)}); last error: {why}",
                        reason="BUILD_FAILED", metadata=metadata)  # fmt: skip


def built_on(host: str) -> Decide:
    """The build on ``host`` ended: ACTIVE, or the compute reported its fault, or the record
    moved on without it (deleted, deleting, taken off the host): the flow re-reads it."""

    def decide(record: state_pb2.InstanceRecord | None) -> Ended | None:
        if record is None:
            return Ended()
        server = record.server
        if server.task_state == T.TASK_STATE_DELETING or server.host != host:
            return Ended()
        if server.vm_state == V.VM_STATE_ACTIVE and server.task_state == T.TASK_STATE_UNSPECIFIED:
            return Ended()
        if compute_report.reported(record, host, compute_report.BUILD):
            return Ended(reported_error(record))
        return None

    return decide


class BuildFlow:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._store = deps.store

    async def run(self, instance_id: str) -> None:
        with tracer().start_as_current_span("api.build", attributes={"stratus.instance_id": instance_id}):
            last: StratusError | None = None
            while True:
                record, revision = await instances.get(self._store, instance_id)
                if record.server.task_state == T.TASK_STATE_DELETING:
                    return
                if len(record.tried_hosts) >= self._deps.limits.max_build_attempts:
                    break
                if past_action_deadline() and not record.server.host:
                    last = DeadlineExceeded("the build did not finish by its deadline", reason="BUILD_DEADLINE")
                    break
                host = await self._placed(record, revision, last)
                if not host:
                    return  # refused: the record is in ERROR already
                trace.get_current_span().set_attribute("stratus.host", host)
                err = await self._attempt(host, instance_id, record.action_id)
                if err is None:
                    return  # the spawn step ends with the action (action_log.conclude)
                last = err
                log.warning("build of %s failed on %s: %s", instance_id, host, err.message)
                await self._forget_host(instance_id, host)
                if err.reason in NOT_RETRYABLE:
                    break
            await self._fail(instance_id, last)

    async def _placed(self, record: state_pb2.InstanceRecord, revision: int, last: StratusError | None) -> str:
        """The server's host: the one its record names, or one scheduled now ("" when refused).
        The action's schedule step is written beside the scheduling, not before it."""
        step = asyncio.create_task(action_log.start_schedule(self._store, record))
        try:
            host = record.server.host or await self._schedule(record, last, revision)
        finally:
            scheduling = await step
        await action_log.finish_schedule(self._store, scheduling, record.server.id, host)
        return host

    async def _attempt(self, host: str, instance_id: str, action_id: str) -> StratusError | None:
        """One spawn on ``host``; the error it failed with. The action's spawn step is written
        beside the compute call, not before it."""
        step = asyncio.create_task(action_log.start_step(self._store, instance_id, "create", "spawn", host))
        error: StratusError | None = None
        try:
            await self._spawn(host, instance_id, action_id)
        except StratusError as err:
            error = err
        finally:
            spawning = await step
        if error is not None:
            await action_log.finish_step(self._store, spawning, error=error)
        return error

    async def _spawn(self, host: str, instance_id: str, action_id: str) -> None:
        """Asks the compute to build (it answers at once) and waits for the outcome it records:
        raises what the spawn failed with (the compute cleaned up), or COMPUTE_DOWN when the host
        lost its compute meanwhile, or COMPUTE_TIMEOUT past ``build_timeout_s``."""
        ask = lambda: self._ask(host, instance_id, action_id)  # noqa: E731
        ended = await on_compute(self._deps, host, instance_id, "build", ask, built_on(host),
                                 self._deps.limits.build_timeout_s)  # fmt: skip
        if ended.error is not None:
            raise ended.error

    async def _ask(self, host: str, instance_id: str, action_id: str) -> None:
        request = compute_pb2.BuildInstanceRequest(instance_id=instance_id, action_id=action_id)
        await call(self._deps.compute(host).BuildInstance, request)

    async def _schedule(self, record: state_pb2.InstanceRecord, last: StratusError | None, revision: int = 0) -> str:
        """A host claimed for the server (its record naming it, written with the claim from the
        record read at ``revision``), or "" with the record in ERROR saying why none was.

        After failed attempts the fault leads with what failed, not with the scheduler's "no
        other host": a user must see that the image is broken, not only that hosts ran out."""
        instance_id = record.server.id
        try:
            reply = await self._select(record, revision)
        except StratusError as err:
            refusal = err
        else:
            return self._place(reply)
        if refusal.reason == "SERVER_DELETING":
            return ""  # the delete that follows removes the record
        code = code_of(refusal).name
        if record.tried_hosts:
            failure = build_failure(list(record.tried_hosts), last)
            metadata = {**refusal.metadata, **failure.metadata}
            refusal = StratusError(f"{failure.message}; no other host to try: {refusal.message}",
                                   reason=failure.reason, metadata=metadata)  # fmt: skip
            code = code_of(last).name if last is not None else "INTERNAL"
        deleting = T.TASK_STATE_DELETING  # a delete that came meanwhile stays one
        refuse = lambda r: False if r.server.task_state == deleting else set_fault(r, refusal, code)  # noqa: E731
        await instances.update(self._store, instance_id, refuse)
        return ""

    @staticmethod
    def _place(reply: scheduler_pb2.SelectDestinationsResponse) -> str:
        """The scheduler's host: the record names it already (written with the claim)."""
        return reply.selected.host

    async def _select(
        self, record: state_pb2.InstanceRecord, revision: int = 0
    ) -> scheduler_pb2.SelectDestinationsResponse:
        """The scheduler's choice (its claim and the record's host written in one transaction);
        while no scheduler answers, tried again with backoff until the flow's deadline, then
        Unavailable saying the scheduler was unreachable."""
        deadline, delays = flow_deadline(self._deps.limits), backoff()
        spec = await self._deps.specs.for_record(record)
        request = scheduler_pb2.SelectDestinationsRequest(spec=spec, instance=record, instance_revision=revision)
        while True:
            try:
                stub = self._deps.peers.scheduler()
                return await call(stub.SelectDestinations, request)
            except StratusError as err:
                if not is_transient(err):
                    raise
                log.warning("scheduling %s: not now (%s); trying again", record.server.id, err.message)
                if not await pause(delays, deadline):
                    waited = waited_for(self._deps.limits)
                    if err.reason == "NO_COMPUTE_UP":
                        raise Unavailable(f"no compute host was up {waited} ({err.message})",
                                          reason="NO_COMPUTE_UP") from err  # fmt: skip
                    raise Unavailable(f"the scheduler was unreachable {waited} (last error: {err.message})",
                                      reason="SCHEDULER_UNREACHABLE") from err  # fmt: skip

    async def _forget_host(self, instance_id: str, host: str) -> None:
        """Takes the server off ``host`` in one transaction (``claims.unplace``): the host cleared
        and remembered as tried, its claim and group placement released."""

        def retry(r: state_pb2.InstanceRecord) -> None:
            r.tried_hosts.append(host)
            r.ClearField("report")
            r.server.vm_state = V.VM_STATE_BUILDING
            if r.server.task_state != T.TASK_STATE_DELETING:
                r.server.task_state = T.TASK_STATE_SCHEDULING

        await claims.unplace(self._store, instance_id, host, retry)

    async def _fail(self, instance_id: str, last: StratusError | None) -> None:
        def fail(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state == T.TASK_STATE_DELETING:
                return False
            set_fault(r, build_failure(list(r.tried_hosts), last), code_of(last).name if last else "INTERNAL")
            return None

        await instances.update(self._store, instance_id, fail)

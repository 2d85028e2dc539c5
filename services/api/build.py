"""The multi-step flows behind the Servers API, each recording its progress in the instance's
task_state so that a restarted api finishes them (``recover``):

- build: schedule (claim) -> record the host -> compute spawns; on a failed host release the
  claim, remember the host, try again up to ``max_attempts``, then ERROR with a fault that says why.
- delete: wait for any build, destroy on the host, release the claim, remove the record.
- power actions: ask the host, which records the outcome; on failure clear the task and say why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from opentelemetry import trace

from services.api import server_groups
from services.api.peers import Peers, call
from services.api.specs import SpecResolver
from services.core import claims, instances
from services.core.errors import NotFound, StratusError, Unavailable, code_of
from services.core.etcd import Store
from services.core.telemetry import tracer
from stratus.compute.v1 import compute_pb2
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
V = servers_pb2.VmState
T = servers_pb2.TaskState
NO_SCHEDULER_WAIT_S = 10.0


def set_fault(record: state_pb2.InstanceRecord, err: StratusError, code: str) -> None:
    """ERROR with a fault carrying the error's reason and metadata (e.g. the filter and resource)."""
    server = record.server
    server.vm_state = V.VM_STATE_ERROR
    server.task_state = T.TASK_STATE_UNSPECIFIED
    server.fault.CopyFrom(servers_pb2.Fault(code=code, message=err.message, reason=err.reason,
                                            created_at=instances.now(), metadata=err.metadata))  # fmt: skip


def build_failure(tried: Sequence[str], last: StratusError | None) -> StratusError:
    """BUILD_FAILED after every attempt failed, naming the hosts tried."""
    why = last.message if last else "no detail"
    metadata = {"hosts_tried": ",".join(tried), "attempts": str(len(tried))}
    if last is not None:
        metadata["last_reason"] = last.reason
    return StratusError(f"build failed on {len(tried)} host(s) ({', '.join(tried)}); last error: {why}",
                        reason="BUILD_FAILED", metadata=metadata)  # fmt: skip


class Orchestrator:
    def __init__(self, store: Store, peers: Peers, specs: SpecResolver, max_attempts: int) -> None:
        self._store = store
        self._peers = peers
        self._specs = specs
        self._max_attempts = max_attempts

    # ---- build --------------------------------------------------------------------------
    async def build(self, instance_id: str) -> None:
        with tracer().start_as_current_span("api.build", attributes={"stratus.instance_id": instance_id}):
            last: StratusError | None = None
            while True:
                record, _ = await instances.get(self._store, instance_id)
                if record.server.task_state == T.TASK_STATE_DELETING:
                    return
                if len(record.tried_hosts) >= self._max_attempts:
                    break
                host = record.server.host or await self._schedule(record)
                if not host:
                    return  # refused: the record is in ERROR already
                trace.get_current_span().set_attribute("stratus.host", host)
                try:
                    await call(self._peers.compute(host).BuildInstance,
                               compute_pb2.BuildInstanceRequest(instance_id=instance_id))  # fmt: skip
                    return
                except StratusError as err:
                    last = err
                    log.warning("build of %s failed on %s: %s", instance_id, host, err.message)
                    await self._forget_host(instance_id, host)
            await self._fail_build(instance_id, last)

    async def _schedule(self, record: state_pb2.InstanceRecord) -> str:
        instance_id = record.server.id
        try:
            reply = await self._select(record)
        except StratusError as err:
            refusal = err
        else:
            return await self._place(record, reply.selected.host)
        code = code_of(refusal).name
        await instances.update(self._store, instance_id, lambda r: set_fault(r, refusal, code))
        return ""

    async def _place(self, record: state_pb2.InstanceRecord, host: str) -> str:
        instance_id = record.server.id

        def place(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state == T.TASK_STATE_DELETING:
                return False
            r.server.host = host
            return None

        placed = await instances.update(self._store, instance_id, place)
        if placed.server.host != host:  # deleted meanwhile: give the claim back
            await self._release(placed, host)
            return ""
        return host

    async def _select(self, record: state_pb2.InstanceRecord) -> scheduler_pb2.SelectDestinationsResponse:
        deadline = asyncio.get_running_loop().time() + NO_SCHEDULER_WAIT_S
        spec = await self._specs.for_record(record)
        while True:
            try:
                stub = self._peers.scheduler()
                return await call(stub.SelectDestinations, scheduler_pb2.SelectDestinationsRequest(spec=spec))
            except Unavailable:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _release(self, record: state_pb2.InstanceRecord, host: str) -> None:
        """Gives the claim on ``host`` back, and the group placement that came with it."""
        instance_id = record.server.id
        await claims.release(self._store, host, instance_id)
        if record.server.server_group_id:
            await server_groups.forget_placement(self._store, record.server.server_group_id, instance_id)

    async def _forget_host(self, instance_id: str, host: str) -> None:
        record, _ = await instances.get(self._store, instance_id)
        await self._release(record, host)

        def retry(r: state_pb2.InstanceRecord) -> None:
            r.tried_hosts.append(host)
            r.server.host = ""
            r.server.vm_state = V.VM_STATE_BUILDING
            if r.server.task_state != T.TASK_STATE_DELETING:
                r.server.task_state = T.TASK_STATE_SCHEDULING

        await instances.update(self._store, instance_id, retry)

    async def _fail_build(self, instance_id: str, last: StratusError | None) -> None:
        def fail(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state == T.TASK_STATE_DELETING:
                return False
            set_fault(r, build_failure(list(r.tried_hosts), last), "INTERNAL")
            return None

        await instances.update(self._store, instance_id, fail)

    # ---- delete -------------------------------------------------------------------------
    async def delete(self, instance_id: str) -> None:
        with tracer().start_as_current_span("api.delete", attributes={"stratus.instance_id": instance_id}):
            try:
                record, _ = await instances.get(self._store, instance_id)
            except NotFound:
                return
            host = record.server.host
            if host:
                try:
                    await call(self._peers.compute(host).DestroyInstance,
                               compute_pb2.DestroyInstanceRequest(instance_id=instance_id))  # fmt: skip
                except Unavailable:
                    log.warning("compute %s is down: deleting %s locally; the host cleans up later", host, instance_id)
                await claims.release(self._store, host, instance_id)
            if record.server.server_group_id:
                await server_groups.forget_member(self._store, record.server.server_group_id, instance_id)
            await instances.delete(self._store, instance_id)

    # ---- power actions ------------------------------------------------------------------
    async def power(self, instance_id: str, action: str, hard: bool = False) -> None:
        with tracer().start_as_current_span(f"api.{action}", attributes={"stratus.instance_id": instance_id}):
            record, _ = await instances.get(self._store, instance_id)
            try:
                stub = self._peers.compute(record.server.host)
                if action == "stop":
                    await call(stub.PowerOffInstance, compute_pb2.PowerOffInstanceRequest(instance_id=instance_id))
                elif action == "start":
                    await call(stub.PowerOnInstance, compute_pb2.PowerOnInstanceRequest(instance_id=instance_id))
                else:
                    await call(stub.RebootInstance,
                               compute_pb2.RebootInstanceRequest(instance_id=instance_id, hard=hard))  # fmt: skip
            except StratusError as err:
                log.warning("%s of %s failed: %s", action, instance_id, err.message)
                failure = StratusError(f"{action} failed: {err.message}", reason=err.reason)
                await instances.update(self._store, instance_id, lambda r: self._clear_task(r, failure))

    @staticmethod
    def _clear_task(record: state_pb2.InstanceRecord, err: StratusError) -> None:
        record.server.task_state = T.TASK_STATE_UNSPECIFIED
        record.server.fault.CopyFrom(
            servers_pb2.Fault(code="INTERNAL", message=err.message, reason=err.reason, created_at=instances.now())
        )

"""What every flow shares: its dependencies, its limits, how a failure lands in the record, and how
an outage only delays it (``retrying``, ``Backoff``)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from services.api.flows import action_log
from services.api.flows.record_events import RecordEvents
from services.api.flows.request_spec import SpecResolver
from services.api.images.manager import ImagesManager
from services.api.peers import CALL_TIMEOUT_S, Peers
from services.core import instances
from services.core.backoff import backoff
from services.core.errors import (
    STATE_STORE_FULL,
    NotFound,
    StratusError,
    Unavailable,
    code_of,
    is_transient,
    state_store_down,
    state_store_full,
)
from services.core.etcd import Store, is_store_full, is_store_outage
from stratus.compute.v1 import compute_pb2_grpc
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
V = servers_pb2.VmState
T = servers_pb2.TaskState
Mutation = Callable[[state_pb2.InstanceRecord], bool | None]
# The actions (and settle-resize, a flow with no action) that have no deadline: undoing or settling
# what was done, never failed half-way.
ALWAYS_FINISH = frozenset({"delete", "confirm-resize", "revert-resize", "settle-resize"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_build_attempts: int = 3
    # How long a build or snapshot waits for the compute's outcome (a first build downloads the image).
    build_timeout_s: float = 1800.0
    snapshot_timeout_s: float = 1800.0
    # How long a flow waits out outages (etcd, the scheduler, a compute unreachable) before it fails.
    flow_deadline_s: float = 300.0
    # How long a host may have no compute process during a call before the call counts as failed
    # (a restart re-registers within a lease TTL or two).
    compute_down_grace_s: float = 15.0

    def deadline_s(self, kind: str) -> float | None:
        """How long an action of ``kind`` may take in all, whichever replica drives it and whatever
        dies meanwhile (its ``ServerAction.deadline``): the compute's part plus the outage budget.
        None for those that always finish (they wait out outages for as long as they last)."""
        if kind in ALWAYS_FINISH:
            return None
        compute = {"create": self.build_timeout_s, "resize": self.build_timeout_s, "snapshot": self.snapshot_timeout_s}
        return compute.get(kind, CALL_TIMEOUT_S) + self.flow_deadline_s


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    peers: Peers
    specs: SpecResolver
    images: ImagesManager
    limits: Limits
    # Wakes a flow waiting for a compute's outcome when the record changes (None: it polls).
    events: RecordEvents | None = None

    def compute(self, host: str) -> compute_pb2_grpc.ComputeStub:
        return self.peers.compute(host)


def set_fault(record: state_pb2.InstanceRecord, err: StratusError, code: str) -> None:
    """ERROR with a fault carrying the error's reason and metadata (e.g. the filter and resource)."""
    server = record.server
    server.vm_state = V.VM_STATE_ERROR
    server.task_state = T.TASK_STATE_UNSPECIFIED
    server.fault.CopyFrom(servers_pb2.Fault(code=code, message=err.message, reason=err.reason,
                                            created_at=instances.now(), metadata=err.metadata))  # fmt: skip


def task_failed(task: int, what: str, cause: StratusError) -> Mutation:
    """Clears ``task`` and says in the fault that ``what`` failed, and why; the vm state stays (the
    compute did not change it). Nothing changes if the task is no longer ``task`` (deleting, or the
    compute finished and only its reply was lost)."""
    fault = servers_pb2.Fault(code=code_of(cause).name, message=f"{what} failed: {cause.message}",
                              reason=cause.reason, metadata=cause.metadata)  # fmt: skip

    def fail(record: state_pb2.InstanceRecord) -> bool | None:
        if record.server.task_state != task:
            return False
        record.server.task_state = T.TASK_STATE_UNSPECIFIED
        record.ClearField("report")
        record.server.fault.CopyFrom(fault)
        record.server.fault.created_at.CopyFrom(instances.now())
        return None

    return fail


def clear_task(task: int) -> Mutation:
    """Clears ``task`` if it is still the one in progress (and the compute's report of it)."""

    def clear(record: state_pb2.InstanceRecord) -> bool | None:
        if record.server.task_state != task:
            return False
        record.server.task_state = T.TASK_STATE_UNSPECIFIED
        record.ClearField("report")
        return None

    return clear


# ---- outages only delay, up to the deadlines ---------------------------------------------------
# The loop time by which the flow running in this task must be over an outage (set by ``retrying``:
# ``flow_deadline_s`` from its start, never past its action's deadline).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("flow_deadline", default=None)
# The loop time of the running flow's action deadline (``ServerAction.deadline``), if it has one.
_action_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("action_deadline", default=None)


def is_outage(exc: BaseException) -> bool:
    """Worth waiting out: etcd unreachable or slow, a peer unavailable or too slow, a lost race."""
    return is_transient(exc) or is_store_outage(exc)


def store_is_full(exc: BaseException) -> bool:
    """Whether etcd's lack of space (its NOSPACE alarm) is behind ``exc``, raised here or reported
    by a peer (reason STATE_STORE_FULL), directly or as the cause of what was raised."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; bounded all the same
        if seen is None:
            return False
        if is_store_full(seen) or (isinstance(seen, StratusError) and seen.reason == STATE_STORE_FULL):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def flow_deadline(limits: Limits) -> float:
    """The loop time by which the running flow must be over an outage: ``retrying``'s, or one from now."""
    deadline = _deadline.get()
    return deadline if deadline is not None else asyncio.get_running_loop().time() + limits.flow_deadline_s


def action_deadline() -> float:
    """The loop time of the running flow's action deadline (infinity when it has none)."""
    deadline = _action_deadline.get()
    return math.inf if deadline is None else deadline


def past_action_deadline() -> bool:
    return asyncio.get_running_loop().time() >= action_deadline()


async def pause(delays: Iterator[float], deadline: float) -> bool:
    """Sleeps the next delay (never past ``deadline``); False when the deadline has passed."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        return False
    await asyncio.sleep(min(next(delays), left))
    return True


async def _bind_action_deadline(deps: Deps, instance_id: str, what: str, outage_until: float) -> None:
    """Reads the flow's action deadline (kept in etcd, so a replica taking the flow over keeps it)
    into this task's context, and bounds the outage deadline by it. A kind with no deadline reads nothing."""
    if deps.limits.deadline_s(action_log.kind_of(what)) is None:
        return
    wall = await action_log.deadline(deps.store, instance_id, what)
    if wall is None:
        return
    loop = asyncio.get_running_loop()
    at = loop.time() + (wall - time.time())
    _action_deadline.set(at)
    _deadline.set(min(outage_until, at))


async def retrying(
    deps: Deps,
    instance_id: str,
    what: str,
    attempt: Callable[[], Awaitable[None]],
    pending: Callable[[state_pb2.InstanceRecord], bool],
    give_up: Callable[[StratusError], Mutation] | None = None,
) -> None:
    """Runs ``attempt`` (a flow, which resumes from the record) until it ends without an outage; an
    outage pauses it with backoff, and it resumes only while ``pending`` says the record still
    needs it. Past ``flow_deadline_s`` (or the action's deadline, whichever comes first) the record
    gets ``give_up``'s fault (if etcd takes it) and the last error is raised; a flow left in its
    task is taken up again by its owner. etcd out of space (NOSPACE) never gives a fault: the flow
    stays in its task and its owner resumes it once etcd takes writes again. A non-transient error
    is raised at once."""
    outage_until = asyncio.get_running_loop().time() + deps.limits.flow_deadline_s
    tokens = _deadline.set(outage_until), _action_deadline.set(None)
    delays = backoff()
    try:
        first, bound = True, False
        while True:
            try:
                if not bound:
                    await _bind_action_deadline(deps, instance_id, what, outage_until)
                    bound = True
                if not first and not await _still_pending(deps, instance_id, pending):
                    return
                first = False
                await attempt()
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if not await pause(delays, flow_deadline(deps.limits)):
                    why = waited_for(deps.limits)
                    log.error("%s of server %s gave up after an outage %s: %s", what, instance_id, why, exc)
                    if give_up is not None and not store_is_full(exc):  # etcd out of space: no fault, resumed later
                        await _give_up(deps, instance_id, give_up, exc, why)
                    raise
                log.warning("%s of server %s paused (%s: %s); resuming", what, instance_id, type(exc).__name__, exc)
    finally:
        _deadline.reset(tokens[0])
        _action_deadline.reset(tokens[1])


def waited_for(limits: Limits) -> str:
    """What ran out: the action's deadline, or the outage budget."""
    return "until its action's deadline" if past_action_deadline() else f"for {limits.flow_deadline_s:.0f}s"


async def _give_up(
    deps: Deps, instance_id: str, give_up: Callable[[StratusError], Mutation], exc: Exception, waited: str
) -> None:
    cause = exc if isinstance(exc, StratusError) else (state_store_full() if is_store_full(exc) else state_store_down())
    why = Unavailable(
        f"gave up after an outage {waited}: {cause.message}", reason=cause.reason, metadata=cause.metadata
    )
    try:
        await instances.update(deps.store, instance_id, give_up(why))
    except NotFound:
        return
    except Exception as failed:
        if not is_outage(failed):
            raise
        log.error("server %s: could not record that %s; recovery resumes it", instance_id, why.message)


async def _still_pending(deps: Deps, instance_id: str, pending: Callable[[state_pb2.InstanceRecord], bool]) -> bool:
    try:
        record, _ = await instances.get(deps.store, instance_id)
    except NotFound:
        return False
    return pending(record)


def in_task(*tasks: int) -> Callable[[state_pb2.InstanceRecord], bool]:
    """``pending`` for a flow that is under way while the server's task is one of ``tasks``."""
    return lambda record: record.server.task_state in tasks

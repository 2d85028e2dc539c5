"""Server actions, as Nova's instance actions: one record per request that changes a server
(``server_actions/<instance>/<action>``, a public ``ServerAction``), written in the same etcd
transaction as the state change the request makes, so every accepted action has its record.

The flows append steps (``start_step``/``finish_step``: schedule, spawn on a host, power off, ...)
and the orchestrator concludes the action from the record once its flow is over (``conclude``):
the server's fault means ERROR, a server gone or being deleted means CANCELLED. A flow that knows
better says so first (``finish_action``); only a RUNNING action is ever concluded.

Bounds: at most ``MAX_STEPS`` steps per action (the oldest go first, counted in
``events_dropped``), messages of at most ``MESSAGE_MAX`` characters, and the newest
``MAX_ACTIONS`` finished actions per server (``prune``). When a server's record is removed its
actions move under a lease of ``RETENTION_S`` (``retire``): its project reads them a week longer,
then etcd drops them by itself, with no sweeper.

Step writes are compare-and-swap on the action's key; they never raise a domain error into a flow
(a write that keeps losing its race is logged and skipped: the log informs, it guards nothing).
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass

from etcd3aio._protobuf import RequestOp

from services.api import paging
from services.api.flows import actions
from services.core import context, instances, keys, retry
from services.core.errors import StratusError, shorten
from services.core.etcd import KV, Store
from services.core.message_limits import fill_page
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
R = servers_pb2.ServerActionResult
T = servers_pb2.TaskState
V = servers_pb2.VmState
MAX_STEPS = 50
MAX_ACTIONS = 100
READ_MOST = 10 * MAX_ACTIONS  # a server's actions read at most: the finished ones kept, and running ones
MESSAGE_MAX = 1024
RETENTION_S = 7 * 24 * 3600
MAX_SWAP_ATTEMPTS = 20  # a step's write: it guards nothing, so it gives up sooner (and logs)
CREATE = "create"
DELETE = "delete"
# a flow's or action's name -> the action it records (Nova has one "reboot" for both kinds)
KINDS = {"build": CREATE, "reboot-hard": "reboot"}
# compute call -> (the action it belongs to, the step's name)
CALL_STEPS: dict[str, tuple[str, str]] = {
    "PowerOffInstance": ("stop", "power off"),
    "PowerOnInstance": ("start", "power on"),
    "RebootInstance": ("reboot", "reboot"),
    "PauseInstance": ("pause", "pause"),
    "UnpauseInstance": ("unpause", "unpause"),
    "SuspendInstance": ("suspend", "suspend"),
    "ResumeInstance": ("resume", "resume"),
    "ResizeInstance": ("resize", "resize"),
    "ConfirmResizeInstance": ("confirm-resize", "confirm resize"),
    "RevertResizeInstance": ("revert-resize", "revert resize"),
}
# the tasks that mean an action of the kind is still in progress
TASKS: dict[str, frozenset[int]] = {
    CREATE: frozenset({T.TASK_STATE_SCHEDULING, T.TASK_STATE_SPAWNING}),
    DELETE: frozenset({T.TASK_STATE_DELETING}),
}
for _name, _action in actions.ACTIONS.items():
    TASKS[KINDS.get(_name, _name)] = TASKS.get(KINDS.get(_name, _name), frozenset()) | {_action.task}

_request_id: ContextVar[str] = ContextVar("stratus_request_id", default="")
Error = StratusError | str | None


def kind_of(name: str) -> str:
    """``build`` -> ``create``, ``reboot-hard`` -> ``reboot``; the others are their own kind."""
    return KINDS.get(name, name)


def bind_request_id(value: str) -> Token[str]:
    """The caller's ``x-request-id`` for the actions this call records (servicers.py binds it)."""
    return _request_id.set(value)


def request_id(given: str = "") -> str:
    return given or _request_id.get() or f"req-{uuid.uuid4()}"


def action_id() -> str:
    """Sorts by start time to the nanosecond (UUIDv7 only to the millisecond), so a server's
    actions list in the order they began: 16 hex digits of the time, 8 random ones."""
    return f"{time.time_ns():016x}{secrets.token_hex(4)}"


def text(error: Error) -> str:
    message = error.message if isinstance(error, StratusError) else (error or "")
    return shorten(message, MESSAGE_MAX)


# ---- the action's record, written with the request's state change ---------------------------
def new_action(
    instance_id: str, name: str, project_id: str, given_request_id: str = "", deadline_s: float | None = None
) -> servers_pb2.ServerAction:
    """A RUNNING action by the caller on a server of ``project_id`` (the server's project), that
    gives up ``deadline_s`` from now (None: it has no deadline)."""
    started = instances.now()
    action = servers_pb2.ServerAction(
        id=action_id(), server_id=instance_id, action=kind_of(name), request_id=request_id(given_request_id),
        user_id=context.current().user_id, project_id=project_id, start_time=started,
        result=R.SERVER_ACTION_RESULT_RUNNING,
    )  # fmt: skip
    if deadline_s is not None:
        action.deadline.FromNanoseconds(started.ToNanoseconds() + int(deadline_s * 1e9))
    return action


def write(action: servers_pb2.ServerAction) -> tuple[str, bytes, int]:
    """The action as a ``Store.swap_many`` write that creates it (compared absent)."""
    return keys.server_action(action.server_id, action.id), action.SerializeToString(), 0


def op_create(store: Store, record: state_pb2.InstanceRecord, deadline_s: float | None = None) -> RequestOp:
    """The create action of a new server, as a transaction op (CreateServer's transaction); the
    record names it as its current action (write the record after this)."""
    server = record.server
    action = new_action(server.id, CREATE, server.project_id, record.request_id, deadline_s)
    record.action_id = action.id
    return op_write(store, action)


def op_write(store: Store, action: servers_pb2.ServerAction) -> RequestOp:
    """The action as a transaction op that writes it (the transaction's compares guard it)."""
    key, value, _ = write(action)
    return store.op_put(key, value)


async def update(
    store: Store,
    instance_id: str,
    mutate: Callable[[state_pb2.InstanceRecord], bool | None],
    name: str,
    deadline_s: float | None = None,
) -> state_pb2.InstanceRecord:
    """``instances.update`` that also creates the action ``name`` in the same transaction, when
    ``mutate`` changes the record (it returns False to change nothing: then no action either)."""
    action: servers_pb2.ServerAction | None = None

    async def write_both(record: state_pb2.InstanceRecord, revision: int) -> bool:
        nonlocal action
        instances.stamp(record)
        action = action or new_action(instance_id, name, record.server.project_id, deadline_s=deadline_s)
        record.action_id = action.id  # the compute acts for this action only from now on
        return await store.swap_many(
            [(keys.instance(instance_id), record.SerializeToString(), revision), write(action)]
        )

    return await retry.swap(lambda: instances.get(store, instance_id), mutate, write_both, what=f"server {instance_id}")


# ---- steps --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Step:
    key: str
    seq: int  # its place among every step the action had, dropped ones included


async def _change(store: Store, key: str, change: Callable[[servers_pb2.ServerAction], bool | None],
                  lease: int | None = None, read: KV | None = None) -> servers_pb2.ServerAction | None:  # fmt: skip
    """Applies ``change`` to the action at ``key`` by compare-and-swap (keeping its lease unless
    given one), starting from ``read`` when the caller has just read it; None when there is no
    such action or the swap kept losing."""

    async def attempt() -> servers_pb2.ServerAction | retry.Again | None:
        nonlocal read
        kv, read = read or await store.get(key), None
        if kv is None:
            return None
        action = servers_pb2.ServerAction.FromString(kv.value)
        if change(action) is False:
            return action
        keep = kv.lease if lease is None else lease
        return action if await store.swap(key, action.SerializeToString(), kv.mod_revision, lease=keep) else retry.AGAIN

    try:
        return await retry.until_done(attempt, what=f"action {key}", attempts=MAX_SWAP_ATTEMPTS)
    except retry.TooFast:
        log.warning("action %s is changing too fast; a step of it is not recorded", key)
        return None


async def _all(store: Store, instance_id: str) -> list[KV]:
    """The server's actions, oldest first, at one revision (more than ``READ_MOST``: TooMany, a bug)."""
    kvs, _ = await store.read_all(keys.server_actions(instance_id), most=READ_MOST)
    return kvs


def _newest_running(kvs: Sequence[KV], kind: str) -> KV | None:
    """Of a server's actions (oldest first), its newest RUNNING one of ``kind``."""
    for kv in reversed(kvs):
        action = servers_pb2.ServerAction.FromString(kv.value)
        if action.action == kind and action.result == R.SERVER_ACTION_RESULT_RUNNING:
            return kv
    return None


async def _running(store: Store, instance_id: str, kind: str) -> KV | None:
    """The server's newest RUNNING action of ``kind``, as just read."""
    return _newest_running(await _all(store, instance_id), kind)


async def deadline(store: Store, instance_id: str, name: str) -> float | None:
    """The wall-clock time (seconds since the epoch) the server's running action ``name`` gives up
    at; None when it has none (or there is no such action)."""
    found = await _running(store, instance_id, kind_of(name))
    if found is None:
        return None
    action = servers_pb2.ServerAction.FromString(found.value)
    return action.deadline.ToNanoseconds() / 1e9 if action.HasField("deadline") else None


async def start_step(store: Store, instance_id: str, name: str, step: str, host: str = "") -> Step | None:
    """Appends a RUNNING step to the server's running action ``name``; None when there is none."""
    found = await _running(store, instance_id, kind_of(name))
    if found is None:
        return None
    event = servers_pb2.ServerActionEvent(name=step, host=host, start_time=instances.now(),
                                          result=R.SERVER_ACTION_RESULT_RUNNING)  # fmt: skip

    def add(action: servers_pb2.ServerAction) -> None:
        action.events.append(event)
        overflow = len(action.events) - MAX_STEPS
        if overflow > 0:
            del action.events[:overflow]
            action.events_dropped += overflow

    action = await _change(store, found.key, add, read=found)
    return None if action is None else Step(found.key, action.events_dropped + len(action.events) - 1)


async def start_call_step(store: Store, server: servers_pb2.Server, method: str) -> Step | None:
    """The step of a compute call (``PowerOffInstance`` -> "power off" of the stop action)."""
    name, step = CALL_STEPS.get(method, ("", method))
    return await start_step(store, server.id, name, step, server.host) if name else None


async def finish_step(store: Store, step: Step | None, *, error: Error = None, host: str | None = None) -> None:
    """SUCCESS, or ERROR with ``error``'s text; ``host`` when it is known only now. Nothing when
    the step is finished already, or dropped."""
    if step is None:
        return

    def finish(action: servers_pb2.ServerAction) -> bool | None:
        index = step.seq - action.events_dropped
        if index < 0 or index >= len(action.events) or action.events[index].result != R.SERVER_ACTION_RESULT_RUNNING:
            return False
        event = action.events[index]
        _end(event, R.SERVER_ACTION_RESULT_ERROR if error else R.SERVER_ACTION_RESULT_SUCCESS, text(error))
        if host is not None:
            event.host = host
        return None

    await _change(store, step.key, finish)


async def start_schedule(store: Store, record: state_pb2.InstanceRecord) -> Step | None:
    """The schedule step of a build, unless the server has its host already (a resumed spawn)."""
    return None if record.server.host else await start_step(store, record.server.id, CREATE, "schedule")


async def finish_schedule(store: Store, step: Step | None, instance_id: str, host: str) -> None:
    """The schedule step: SUCCESS on ``host``, or (no host) ERROR saying what the server's fault says."""
    if host or step is None:
        await finish_step(store, step, host=host)
        return
    record = await _record(store, instance_id)
    fault = record.server.fault.message if record is not None and record.server.HasField("fault") else ""
    await finish_step(store, step, error=fault or "no host was placed (the server is being deleted)")


def _end(item: servers_pb2.ServerAction | servers_pb2.ServerActionEvent, result: int, message: str) -> None:
    item.result = result  # type: ignore[assignment]
    item.finish_time.CopyFrom(instances.now())
    if message and not item.message:
        item.message = message


# ---- the action's end -----------------------------------------------------------------------
def _ended(result: int, message: str) -> Callable[[servers_pb2.ServerAction], bool | None]:
    def end(action: servers_pb2.ServerAction) -> bool | None:
        if action.result != R.SERVER_ACTION_RESULT_RUNNING:
            return False
        _end(action, result, message)
        for event in action.events:  # steps still open end as their action did
            if event.result == R.SERVER_ACTION_RESULT_RUNNING:
                _end(event, result, message if result != R.SERVER_ACTION_RESULT_SUCCESS else "")
        return None

    return end


async def finish_action(store: Store, instance_id: str, name: str, *, error: Error = None) -> None:
    """Ends the server's running action ``name``: SUCCESS, or ERROR with ``error``'s text."""
    found = await _running(store, instance_id, kind_of(name))
    if found is not None:
        result = R.SERVER_ACTION_RESULT_ERROR if error else R.SERVER_ACTION_RESULT_SUCCESS
        await _change(store, found.key, _ended(result, text(error)), read=found)


def outcome(record: state_pb2.InstanceRecord | None, kind: str) -> tuple[int, str] | None:
    """How an action of ``kind`` ended, judged from the server's record after its flow; None while
    its task is still in progress (the flow, or its resumption, is not done). Pure."""
    if record is None:
        if kind == DELETE:
            return R.SERVER_ACTION_RESULT_SUCCESS, ""
        return R.SERVER_ACTION_RESULT_CANCELLED, "the server was deleted"
    server = record.server
    if server.task_state in TASKS.get(kind, frozenset()):
        return None
    if server.task_state == T.TASK_STATE_DELETING:
        return R.SERVER_ACTION_RESULT_CANCELLED, "the server is being deleted"
    if server.HasField("fault") and (kind != CREATE or server.vm_state == V.VM_STATE_ERROR):
        return R.SERVER_ACTION_RESULT_ERROR, text(server.fault.message)
    return R.SERVER_ACTION_RESULT_SUCCESS, ""


async def _record(store: Store, instance_id: str) -> state_pb2.InstanceRecord | None:
    kv = await store.get(keys.instance(instance_id))
    return state_pb2.InstanceRecord.FromString(kv.value) if kv else None


async def conclude(store: Store, instance_id: str, name: str) -> None:
    """After the flow of ``name``: ends its action as the record says (``outcome``) if nothing
    ended it yet, then prunes the server's oldest actions."""
    kvs = await _all(store, instance_id)
    found = _newest_running(kvs, kind_of(name))
    if found is not None:
        ended = outcome(await _record(store, instance_id), kind_of(name))
        if ended is not None:
            await _change(store, found.key, _ended(*ended), read=found)
    await prune(store, instance_id, kvs)


async def end_orphaned(
    store: Store, record: state_pb2.InstanceRecord, resuming: Sequence[str], kvs: Sequence[KV] | None = None
) -> int:
    """Ends the running actions of a server whose flows ended before their action did (the api
    that drove them died between the two), except those of the flows being resumed. ``kvs``: its
    actions as read BEFORE ``record`` (an action written later may belong to a newer task)."""
    kinds = {kind_of(name) for name in resuming}
    count = 0
    for kv in await _all(store, record.server.id) if kvs is None else kvs:
        action = servers_pb2.ServerAction.FromString(kv.value)
        if action.result != R.SERVER_ACTION_RESULT_RUNNING or action.action in kinds:
            continue
        ended = outcome(record, action.action)
        if ended is not None and await _change(store, kv.key, _ended(*ended), read=kv) is not None:
            count += 1
    return count


async def prune(store: Store, instance_id: str, kvs: Sequence[KV] | None = None) -> None:
    """Keeps the newest ``MAX_ACTIONS`` finished actions of the server (running ones all stay);
    ``kvs``: its actions as the caller just read them (a finished action stays finished)."""
    kvs = await _all(store, instance_id) if kvs is None else kvs
    extra = len(kvs) - MAX_ACTIONS
    for kv in kvs:  # oldest first
        if extra <= 0:
            return
        if servers_pb2.ServerAction.FromString(kv.value).result != R.SERVER_ACTION_RESULT_RUNNING:
            await store.delete(kv.key)
            extra -= 1


async def retire(store: Store, instance_id: str, retention_s: int = RETENTION_S) -> None:
    """The server's record is removed next: its delete action is done, any other still running is
    CANCELLED, and all move under a lease of ``retention_s`` (idempotent: a resumed delete moves
    them to a new lease, and the old one expires with nothing on it)."""
    kvs = await _all(store, instance_id)
    if not kvs:
        return
    lease = await store.grant(retention_s)

    def end(action: servers_pb2.ServerAction) -> None:  # always written: onto the lease
        if action.action == DELETE:
            _ended(R.SERVER_ACTION_RESULT_SUCCESS, "")(action)
        else:
            _ended(R.SERVER_ACTION_RESULT_CANCELLED, "the server was deleted")(action)

    for kv in kvs:
        await _change(store, kv.key, end, lease=lease, read=kv)


# ---- reading --------------------------------------------------------------------------------
async def read(store: Store, instance_id: str) -> list[KV]:
    """The server's actions as stored, oldest first."""
    return await _all(store, instance_id)


def listed(kvs: Sequence[KV]) -> list[servers_pb2.ServerAction]:
    """The actions of ``read``, newest first."""
    return [servers_pb2.ServerAction.FromString(kv.value) for kv in reversed(kvs)]


def page(
    found: Sequence[servers_pb2.ServerAction], instance_id: str, limit: int, token: str
) -> servers_pb2.ListServerActionsResponse:
    """A page of ``found`` (newest first) after ``token`` (the last key of the previous page): at
    most ``limit`` actions and about ``PAGE_BYTES``."""
    after = paging.decode(token, keys.server_actions(instance_id))
    keyed = ((keys.server_action(instance_id, a.id), a) for a in found)
    shown, last = fill_page(((key, a) for key, a in keyed if not after or key < after), limit)
    return servers_pb2.ListServerActionsResponse(actions=shown, next_page_token=paging.next_token(last))

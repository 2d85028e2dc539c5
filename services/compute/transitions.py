"""The changes a compute makes to an instance record, as mutations for ``instances.update``.

Each is guarded: the record must still name this host and must not be being deleted, and the
call's ``Fence`` must still hold (its action is the record's current one, the record still in the
call's task), checked inside the compare-and-swap so a concurrent move, delete, newer action or
given-up task is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.core.errors import FailedPrecondition
from services.core.states import name_of
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
P = servers_pb2.PowerState

Mutation = Callable[[state_pb2.InstanceRecord], bool | None]
Change = Callable[[servers_pb2.Server], None]

# A build starts from BUILDING; ACTIVE is allowed so a lost domain can be rebuilt idempotently.
BUILDABLE = (V.VM_STATE_BUILDING, V.VM_STATE_ACTIVE)


def check_owned(record: state_pb2.InstanceRecord, host: str, instance_id: str) -> None:
    """FailedPrecondition unless the record names ``host`` and is not being deleted."""
    server = record.server
    if server.host != host:
        raise FailedPrecondition(
            f"server {instance_id} is assigned to host {server.host or '(none)'!r}, not {host!r}",
            reason="WRONG_HOST",
        )
    if server.task_state == T.TASK_STATE_DELETING:
        raise FailedPrecondition(f"server {instance_id} is being deleted (task_state DELETING)")


ACTION_SUPERSEDED = "ACTION_SUPERSEDED"


@dataclass(frozen=True, slots=True)
class Fence:
    """The action a compute call serves and the tasks it runs in (none: any): the call's work
    counts only while the record still names both (Temporal's task token)."""

    action_id: str
    tasks: tuple[int, ...] = ()

    def stale(self, record: state_pb2.InstanceRecord) -> str:
        """Why the record is no longer at this call; "" while it is."""
        action = self.action_id or "(none)"
        if record.action_id != self.action_id:
            return f"action {action} was superseded by {record.action_id or '(none)'}"
        if self.tasks and record.server.task_state not in self.tasks:
            return f"action {action} is over (task {name_of(T, record.server.task_state, 'TASK_STATE_')})"
        return ""

    def holds(self, record: state_pb2.InstanceRecord) -> bool:
        return not self.stale(record)

    def check(self, record: state_pb2.InstanceRecord, instance_id: str) -> None:
        """FailedPrecondition(ACTION_SUPERSEDED) unless the record is still at this call."""
        if why := self.stale(record):
            raise FailedPrecondition(f"server {instance_id}: {why}", reason=ACTION_SUPERSEDED)


def check_current(record: state_pb2.InstanceRecord, host: str, instance_id: str, fence: Fence | None) -> None:
    """``check_owned``, and ``fence.check`` when the call has a fence."""
    check_owned(record, host, instance_id)
    if fence is not None:
        fence.check(record, instance_id)


def guarded(host: str, instance_id: str, change: Change, fence: Fence | None = None) -> Mutation:
    def mutate(record: state_pb2.InstanceRecord) -> None:
        check_current(record, host, instance_id, fence)
        change(record.server)

    return mutate


def to_spawning(server: servers_pb2.Server) -> None:
    if server.vm_state not in BUILDABLE:
        state = name_of(V, server.vm_state, "VM_STATE_")
        raise FailedPrecondition(f"server {server.id} cannot be built: vm_state is {state}")
    server.vm_state = V.VM_STATE_BUILDING
    server.task_state = T.TASK_STATE_SPAWNING


def spawning(host: str, instance_id: str, fence: Fence | None = None) -> Mutation:
    """A build accepted here: SPAWNING, any earlier report cleared (it was about another call)."""

    def mutate(record: state_pb2.InstanceRecord) -> None:
        check_current(record, host, instance_id, fence)
        to_spawning(record.server)
        record.ClearField("report")

    return mutate


def to_active(server: servers_pb2.Server) -> None:
    """Spawned: running, nothing in progress, any fault from an earlier host cleared."""
    server.vm_state = V.VM_STATE_ACTIVE
    server.power_state = P.POWER_STATE_RUNNING
    server.task_state = T.TASK_STATE_UNSPECIFIED
    server.ClearField("fault")


def ends_in(vm_state: int, power_state: int) -> Change:
    """An action finished: the server is in ``vm_state`` with ``power_state`` and no task."""

    def change(server: servers_pb2.Server) -> None:
        server.vm_state = vm_state  # type: ignore[assignment]
        server.power_state = power_state  # type: ignore[assignment]
        server.task_state = T.TASK_STATE_UNSPECIFIED

    return change


to_stopped = ends_in(V.VM_STATE_STOPPED, P.POWER_STATE_SHUTDOWN)
to_started = ends_in(V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING)
to_paused = ends_in(V.VM_STATE_PAUSED, P.POWER_STATE_PAUSED)
to_suspended = ends_in(V.VM_STATE_SUSPENDED, P.POWER_STATE_SUSPENDED)
# Running with the new size, waiting for the user to confirm or revert (VERIFY_RESIZE).
to_resized = ends_in(V.VM_STATE_RESIZED, P.POWER_STATE_RUNNING)


def to_rebooted(server: servers_pb2.Server) -> None:
    """Running again (a hard reboot also starts a stopped server, as Nova's)."""
    server.vm_state = V.VM_STATE_ACTIVE
    server.power_state = P.POWER_STATE_RUNNING
    server.task_state = T.TASK_STATE_UNSPECIFIED


def observed(power_state: int) -> Change:
    """What the hypervisor says the guest did by itself: record its power state; a guest that
    powered itself off or crashed while ACTIVE is STOPPED (as Nova's power-state sync)."""

    def change(server: servers_pb2.Server) -> None:
        server.power_state = power_state  # type: ignore[assignment]
        if server.vm_state == V.VM_STATE_ACTIVE and power_state in (P.POWER_STATE_SHUTDOWN, P.POWER_STATE_CRASHED):
            server.vm_state = V.VM_STATE_STOPPED

    return change


# power call -> the tasks the api sets for it (services/api/flows/actions.py): it runs only in them
POWER_TASKS: dict[str, tuple[int, ...]] = {
    "power_off": (T.TASK_STATE_POWERING_OFF,),
    "power_on": (T.TASK_STATE_POWERING_ON,),
    "reboot": (T.TASK_STATE_REBOOTING, T.TASK_STATE_REBOOTING_HARD),
    "pause": (T.TASK_STATE_PAUSING,),
    "unpause": (T.TASK_STATE_UNPAUSING,),
    "suspend": (T.TASK_STATE_SUSPENDING,),
    "resume": (T.TASK_STATE_RESUMING,),
}


def build_outcome(fence: Fence) -> Fence:
    """A build's outcome counts while the record is at its action and still SPAWNING."""
    return Fence(fence.action_id, (T.TASK_STATE_SPAWNING,))

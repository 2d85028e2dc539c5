"""The server actions: which vm states each starts from and the task it sets. One table serves the
API's checks (``begin``), the flows, and recovery after an api restart (``BY_TASK``).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import FailedPrecondition
from services.core.states import name_of
from stratus.v1 import servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState


@dataclass(frozen=True, slots=True)
class Action:
    verb: str  # as messages say it
    needs: frozenset[int]  # the vm states it starts from (with no task in progress)
    task: int  # the task it sets
    power: bool = False  # one compute call that records its own outcome (the power flow)


def _action(verb: str, needs: set[int], task: int, power: bool = False) -> Action:
    return Action(verb, frozenset(needs), task, power)


ACTIONS: dict[str, Action] = {
    "stop": _action("stop", {V.VM_STATE_ACTIVE}, T.TASK_STATE_POWERING_OFF, power=True),
    "start": _action("start", {V.VM_STATE_STOPPED}, T.TASK_STATE_POWERING_ON, power=True),
    "reboot": _action("reboot", {V.VM_STATE_ACTIVE}, T.TASK_STATE_REBOOTING, power=True),
    # as Nova's: a hard reboot also starts a stopped server, its domain defined again if it vanished
    "reboot-hard": _action("reboot", {V.VM_STATE_ACTIVE, V.VM_STATE_STOPPED}, T.TASK_STATE_REBOOTING_HARD, power=True),
    "pause": _action("pause", {V.VM_STATE_ACTIVE}, T.TASK_STATE_PAUSING, power=True),
    "unpause": _action("unpause", {V.VM_STATE_PAUSED}, T.TASK_STATE_UNPAUSING, power=True),
    "suspend": _action("suspend", {V.VM_STATE_ACTIVE}, T.TASK_STATE_SUSPENDING, power=True),
    "resume": _action("resume", {V.VM_STATE_SUSPENDED}, T.TASK_STATE_RESUMING, power=True),
    "resize": _action("resize", {V.VM_STATE_ACTIVE}, T.TASK_STATE_RESIZE_PREP),
    "confirm-resize": _action("confirm the resize of", {V.VM_STATE_RESIZED}, T.TASK_STATE_RESIZE_CONFIRMING),
    "revert-resize": _action("revert the resize of", {V.VM_STATE_RESIZED}, T.TASK_STATE_RESIZE_REVERTING),
    "snapshot": _action(
        "snapshot",
        {V.VM_STATE_ACTIVE, V.VM_STATE_STOPPED, V.VM_STATE_PAUSED, V.VM_STATE_SUSPENDED},
        T.TASK_STATE_IMAGE_SNAPSHOT,
    ),
}
# task state -> the action that set it, for resuming it after an api restart.
BY_TASK: dict[int, str] = {a.task: name for name, a in ACTIONS.items()}
POWER_ACTIONS = frozenset(name for name, a in ACTIONS.items() if a.power)


def vm_state_name(value: int) -> str:
    return name_of(V, value, "VM_STATE_")


def describe(server: servers_pb2.Server) -> str:
    """``SHUTOFF (task none)``: the status a user sees, and the task in progress."""
    task = name_of(T, server.task_state, "TASK_STATE_") if server.task_state else "none"
    return f"{name_of(servers_pb2.ServerStatus, server.status, 'SERVER_STATUS_')} (task {task})"


def one_of(names: list[str]) -> str:
    """``["A", "B", "C"]`` -> ``"A, B or C"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def refusal(name: str, server: servers_pb2.Server, why: str = "") -> FailedPrecondition:
    """FAILED_PRECONDITION naming the server's current state and what the action needs."""
    action = ACTIONS[name]
    needs = one_of(sorted(vm_state_name(v) for v in action.needs))
    return FailedPrecondition(
        f"cannot {action.verb} server {server.id}: it is {describe(server)}; "
        f"{name} needs {needs} with no task in progress{why}",
        metadata={"vm_state": vm_state_name(server.vm_state),
                  "task_state": name_of(T, server.task_state, "TASK_STATE_")},
    )  # fmt: skip


def begin(name: str, server: servers_pb2.Server) -> None:
    """Sets the action's task (and clears the last fault), or refuses with FAILED_PRECONDITION."""
    action = ACTIONS[name]
    if server.vm_state not in action.needs or server.task_state != T.TASK_STATE_UNSPECIFIED:
        raise refusal(name, server)
    server.task_state = action.task  # type: ignore[assignment]
    server.ClearField("fault")

"""The server state model: the user-facing status derived from vm_state and task_state, as Nova."""

from __future__ import annotations

from stratus.v1 import servers_pb2 as pb

S = pb.ServerStatus
V = pb.VmState
T = pb.TaskState

_BY_VM: dict[int, int] = {
    V.VM_STATE_ACTIVE: S.SERVER_STATUS_ACTIVE,
    V.VM_STATE_BUILDING: S.SERVER_STATUS_BUILD,
    V.VM_STATE_STOPPED: S.SERVER_STATUS_SHUTOFF,
    V.VM_STATE_PAUSED: S.SERVER_STATUS_PAUSED,
    V.VM_STATE_SUSPENDED: S.SERVER_STATUS_SUSPENDED,
    V.VM_STATE_RESIZED: S.SERVER_STATUS_VERIFY_RESIZE,
    V.VM_STATE_ERROR: S.SERVER_STATUS_ERROR,
    V.VM_STATE_DELETED: S.SERVER_STATUS_DELETED,
}

_BY_TASK: dict[int, int] = {
    T.TASK_STATE_REBOOTING: S.SERVER_STATUS_REBOOT,
    T.TASK_STATE_REBOOTING_HARD: S.SERVER_STATUS_HARD_REBOOT,
    T.TASK_STATE_RESIZE_PREP: S.SERVER_STATUS_RESIZE,
    T.TASK_STATE_RESIZE_MIGRATING: S.SERVER_STATUS_RESIZE,
    T.TASK_STATE_RESIZE_FINISH: S.SERVER_STATUS_RESIZE,
    T.TASK_STATE_RESIZE_REVERTING: S.SERVER_STATUS_REVERT_RESIZE,
    T.TASK_STATE_MIGRATING: S.SERVER_STATUS_MIGRATING,
}

# Tasks that change what the status says only from these vm states (Nova's status map).
_TASK_APPLIES = {V.VM_STATE_ACTIVE, V.VM_STATE_STOPPED, V.VM_STATE_RESIZED}


def derive_status(vm_state: int, task_state: int) -> int:
    if vm_state in _TASK_APPLIES and task_state in _BY_TASK:
        if vm_state == V.VM_STATE_RESIZED and task_state != T.TASK_STATE_RESIZE_REVERTING:
            return S.SERVER_STATUS_VERIFY_RESIZE
        return _BY_TASK[task_state]
    return _BY_VM.get(vm_state, S.SERVER_STATUS_UNSPECIFIED)


def name_of(enum: type, value: int, prefix: str) -> str:
    """``(VmState, 1, "VM_STATE_")`` -> ``"ACTIVE"``."""
    return str(enum.Name(value)).removeprefix(prefix)  # type: ignore[attr-defined]

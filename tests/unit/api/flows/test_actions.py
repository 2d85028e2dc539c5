"""The server actions' state table, user_data limits, what lists carry, and what recovery resumes."""

from __future__ import annotations

import pytest

from services.api.flows import actions
from services.api.servers.listing import listed
from services.api.servers.manager import resume_plan, validate_create
from services.api.validation import USER_DATA_MAX
from services.core.errors import FailedPrecondition, InvalidArgument
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2 as pb

V = pb.VmState
T = pb.TaskState


def server(vm: int = V.VM_STATE_ACTIVE, task: int = T.TASK_STATE_UNSPECIFIED) -> pb.Server:
    s = pb.Server(id="s1", vm_state=vm, task_state=task)  # type: ignore[arg-type]
    s.fault.message = "an old failure"
    return s


@pytest.mark.parametrize(
    ("name", "vm", "task"),
    [
        ("pause", V.VM_STATE_ACTIVE, T.TASK_STATE_PAUSING),
        ("unpause", V.VM_STATE_PAUSED, T.TASK_STATE_UNPAUSING),
        ("suspend", V.VM_STATE_ACTIVE, T.TASK_STATE_SUSPENDING),
        ("resume", V.VM_STATE_SUSPENDED, T.TASK_STATE_RESUMING),
        ("resize", V.VM_STATE_ACTIVE, T.TASK_STATE_RESIZE_PREP),
        ("confirm-resize", V.VM_STATE_RESIZED, T.TASK_STATE_RESIZE_CONFIRMING),
        ("revert-resize", V.VM_STATE_RESIZED, T.TASK_STATE_RESIZE_REVERTING),
        ("stop", V.VM_STATE_ACTIVE, T.TASK_STATE_POWERING_OFF),
        ("start", V.VM_STATE_STOPPED, T.TASK_STATE_POWERING_ON),
        ("reboot-hard", V.VM_STATE_ACTIVE, T.TASK_STATE_REBOOTING_HARD),
    ],
)
def test_an_action_sets_its_task_and_clears_the_last_fault(name: str, vm: int, task: int) -> None:
    s = server(vm)
    actions.begin(name, s)
    assert s.task_state == task and not s.HasField("fault")
    assert actions.BY_TASK[task] == name


@pytest.mark.parametrize(
    ("name", "vm", "status"),
    [
        ("unpause", V.VM_STATE_ACTIVE, "ACTIVE"),
        ("resume", V.VM_STATE_PAUSED, "PAUSED"),
        ("confirm-resize", V.VM_STATE_ACTIVE, "ACTIVE"),
        ("pause", V.VM_STATE_STOPPED, "SHUTOFF"),
        ("suspend", V.VM_STATE_PAUSED, "PAUSED"),
        ("resize", V.VM_STATE_RESIZED, "VERIFY_RESIZE"),
        ("snapshot", V.VM_STATE_ERROR, "ERROR"),
    ],
)
def test_an_action_in_the_wrong_state_is_refused_naming_the_state(name: str, vm: int, status: str) -> None:
    s = server(vm)
    s.status = getattr(pb.ServerStatus, f"SERVER_STATUS_{status}")
    with pytest.raises(FailedPrecondition) as info:
        actions.begin(name, s)
    assert status in info.value.message and name in info.value.message
    assert info.value.metadata["vm_state"] == pb.VmState.Name(vm).removeprefix("VM_STATE_")  # type: ignore[arg-type]
    assert s.task_state == T.TASK_STATE_UNSPECIFIED and s.HasField("fault")  # unchanged


def test_no_action_starts_while_another_task_is_in_progress() -> None:
    for name, action in actions.ACTIONS.items():
        for vm in action.needs:
            with pytest.raises(FailedPrecondition) as info:
                actions.begin(name, server(vm, T.TASK_STATE_DELETING))
            assert info.value.metadata["task_state"] == "DELETING"


def test_a_snapshot_starts_from_active_stopped_paused_or_suspended() -> None:
    for vm in (V.VM_STATE_ACTIVE, V.VM_STATE_STOPPED, V.VM_STATE_PAUSED, V.VM_STATE_SUSPENDED):
        s = server(vm)
        actions.begin("snapshot", s)
        assert s.task_state == T.TASK_STATE_IMAGE_SNAPSHOT
    with pytest.raises(FailedPrecondition) as info:
        actions.begin("snapshot", server(V.VM_STATE_BUILDING))
    assert "ACTIVE, PAUSED, STOPPED or SUSPENDED" in info.value.message


def test_every_task_an_action_sets_leads_back_to_one_action() -> None:
    tasks = [a.task for a in actions.ACTIONS.values()]
    assert len(tasks) == len(set(tasks)) == len(actions.BY_TASK)


def user_data_violations(size: int) -> set[str]:
    s = pb.Server(name="ok", flavor_id="f", image_id="i", user_data=b"x" * size)
    try:
        validate_create(pb.CreateServerRequest(server=s))
    except InvalidArgument as err:
        return {field for field, _ in err.violations}
    return set()


def test_user_data_up_to_64_kib_is_taken_and_one_byte_more_is_refused() -> None:
    assert USER_DATA_MAX == 65536
    assert user_data_violations(USER_DATA_MAX) == set()
    assert user_data_violations(USER_DATA_MAX + 1) == {"server.user_data"}


def test_lists_and_watches_carry_no_user_data() -> None:
    s = pb.Server(id="s1", name="n", user_data=b"#cloud-config\n")
    assert listed(s).user_data == b"" and s.name == "n"


def record(vm: int, task: int, resize: bool = False) -> state_pb2.InstanceRecord:
    r = state_pb2.InstanceRecord(server=pb.Server(id="s1", vm_state=vm, task_state=task))  # type: ignore[arg-type]
    if resize:
        r.resize.old_flavor_id = "old"
    return r


@pytest.mark.parametrize(
    ("vm", "task", "resize", "plan"),
    [
        (V.VM_STATE_BUILDING, T.TASK_STATE_SCHEDULING, False, ["build"]),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_DELETING, True, ["delete"]),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_PAUSING, False, ["pause"]),
        (V.VM_STATE_SUSPENDED, T.TASK_STATE_RESUMING, False, ["resume"]),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_RESIZE_PREP, True, ["resize"]),
        (V.VM_STATE_RESIZED, T.TASK_STATE_RESIZE_CONFIRMING, True, ["confirm-resize"]),
        (V.VM_STATE_RESIZED, T.TASK_STATE_RESIZE_REVERTING, True, ["revert-resize"]),
        (V.VM_STATE_RESIZED, T.TASK_STATE_UNSPECIFIED, True, []),  # waits for the user
        (V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED, True, ["settle-resize"]),  # the api died before settling
        (V.VM_STATE_ACTIVE, T.TASK_STATE_POWERING_OFF, True, ["stop", "settle-resize"]),
        (V.VM_STATE_PAUSED, T.TASK_STATE_IMAGE_SNAPSHOT, False, ["snapshot"]),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED, False, []),
    ],
)
def test_recovery_resumes_each_task_and_settles_a_finished_resize(
    vm: int, task: int, resize: bool, plan: list[str]
) -> None:
    assert resume_plan(record(vm, task, resize)) == plan

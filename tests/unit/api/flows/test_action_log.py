"""The action log (services/api/flows/action_log.py): records written with the state change, bounded
steps, how actions end, retention after delete, paging; and through the Servers manager with the
flows against a real etcd (the fixture of test_api_flows_store)."""

from __future__ import annotations

import pytest

from services.api.flows import action_log
from services.api.flows.power import COMPUTE_CALLS
from services.core import context, instances, keys
from services.core.context import RequestContext
from services.core.errors import Internal, NotFound
from services.core.etcd import Store
from services.core.ids import new_id
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2 as pb
from tests.unit.api.flows.test_flows_store import HOST, Api, active_server, api, settled

__all__ = ["api"]  # the fixture, imported for pytest
R = pb.ServerActionResult
T = pb.TaskState
V = pb.VmState
ALICE = RequestContext("alice", "alice", frozenset({"member"}))
BOB = RequestContext("bob", "bob", frozenset({"member"}))


def record_of(task: int = 0, vm: int = V.VM_STATE_ACTIVE, fault: str = "") -> state_pb2.InstanceRecord:
    server = pb.Server(id="s1", project_id="alice", vm_state=vm, task_state=task)  # type: ignore[arg-type]
    if fault:
        server.fault.message = fault
    return state_pb2.InstanceRecord(server=server)


# ---- pure -------------------------------------------------------------------------------------
def test_kinds() -> None:
    assert {action_log.CALL_STEPS[method][0] for method, _ in COMPUTE_CALLS.values()} == {
        action_log.kind_of(name) for name in COMPUTE_CALLS
    }  # every power action's compute call is a step of that action
    assert action_log.kind_of("build") == "create"
    assert action_log.kind_of("reboot-hard") == "reboot"
    assert action_log.kind_of("stop") == "stop"


def test_outcome_from_the_record() -> None:
    outcome = action_log.outcome
    assert outcome(None, "delete") == (R.SERVER_ACTION_RESULT_SUCCESS, "")
    assert outcome(None, "create") == (R.SERVER_ACTION_RESULT_CANCELLED, "the server was deleted")
    assert outcome(record_of(T.TASK_STATE_SPAWNING, V.VM_STATE_BUILDING), "create") is None
    assert outcome(record_of(T.TASK_STATE_REBOOTING_HARD), "reboot") is None
    assert outcome(record_of(T.TASK_STATE_DELETING), "stop")[0] == R.SERVER_ACTION_RESULT_CANCELLED  # type: ignore[index]
    assert outcome(record_of(T.TASK_STATE_DELETING), "delete") is None
    assert outcome(record_of(vm=V.VM_STATE_ERROR, fault="no valid host"), "create") == (
        R.SERVER_ACTION_RESULT_ERROR, "no valid host")  # fmt: skip
    assert outcome(record_of(fault="stop failed: boom"), "stop") == (R.SERVER_ACTION_RESULT_ERROR, "stop failed: boom")
    assert outcome(record_of(vm=V.VM_STATE_STOPPED), "stop") == (R.SERVER_ACTION_RESULT_SUCCESS, "")


def test_pages_are_newest_first() -> None:
    found = [pb.ServerAction(id=action_log.action_id(), action=str(i)) for i in range(5)][::-1]
    first = action_log.page(found, "s1", 2, "")
    assert [a.action for a in first.actions] == ["4", "3"] and first.next_page_token
    second = action_log.page(found, "s1", 2, first.next_page_token)
    assert [a.action for a in second.actions] == ["2", "1"]
    last = action_log.page(found, "s1", 2, second.next_page_token)
    assert [a.action for a in last.actions] == ["0"] and not last.next_page_token


# ---- against etcd -----------------------------------------------------------------------------
async def put_server(store: Store, task: int = 0) -> str:
    server = pb.Server(id=new_id(), project_id="alice", vm_state=V.VM_STATE_ACTIVE, task_state=task)  # type: ignore[arg-type]
    await store.put(keys.instance(server.id), state_pb2.InstanceRecord(server=server).SerializeToString())
    return server.id


def start_stop(r: state_pb2.InstanceRecord) -> bool | None:
    if r.server.task_state:
        return False
    r.server.task_state = T.TASK_STATE_POWERING_OFF
    return None


async def test_an_action_is_written_with_its_state_change_or_not_at_all(store: Store) -> None:
    sid = await put_server(store)
    with context.bound(ALICE):
        token = action_log.bind_request_id("req-from-client")
        await action_log.update(store, sid, start_stop, "stop")
        await action_log.update(store, sid, start_stop, "stop")  # changes nothing: no second action
        action_log._request_id.reset(token)
    found = action_log.listed(await action_log.read(store, sid))
    assert len(found) == 1
    action = found[0]
    assert (action.action, action.user_id, action.project_id) == ("stop", "alice", "alice")
    assert action.request_id == "req-from-client" and action.result == R.SERVER_ACTION_RESULT_RUNNING
    with context.bound(ALICE):
        assert action_log.new_action(sid, "start", "alice").request_id.startswith("req-")


async def test_steps_are_bounded_and_end_with_their_action(store: Store) -> None:
    sid = await put_server(store, T.TASK_STATE_POWERING_OFF)
    with context.bound(ALICE):
        key, value, _ = action_log.write(action_log.new_action(sid, "stop", "alice"))
    await store.put(key, value)
    first = await action_log.start_step(store, sid, "stop", "first", HOST)
    steps = [await action_log.start_step(store, sid, "stop", f"s{i}") for i in range(action_log.MAX_STEPS)]
    await action_log.finish_step(store, first, error="dropped long ago")  # nothing: it was dropped
    await action_log.finish_step(store, steps[-2], error=Internal("x" * 5000))
    await action_log.finish_action(store, sid, "stop", error="power off failed")
    await action_log.finish_action(store, sid, "stop")  # ended already: nothing changes
    (action,) = action_log.listed(await action_log.read(store, sid))
    assert len(action.events) == action_log.MAX_STEPS and action.events_dropped == 1
    assert action.events[0].name == "s0"
    failed, open_one = action.events[-2], action.events[-1]
    assert failed.result == R.SERVER_ACTION_RESULT_ERROR and len(failed.message) == action_log.MESSAGE_MAX
    assert (open_one.result, open_one.message) == (R.SERVER_ACTION_RESULT_ERROR, "power off failed")
    assert action.result == R.SERVER_ACTION_RESULT_ERROR and action.finish_time.seconds > 0
    assert await action_log.start_step(store, sid, "stop", "late") is None  # no running stop action


async def test_conclude_judges_by_the_record_once_the_task_is_over(store: Store) -> None:
    sid = await put_server(store)
    with context.bound(ALICE):
        await action_log.update(store, sid, start_stop, "stop")
    await action_log.conclude(store, sid, "stop")  # still POWERING_OFF: stays running
    assert (action_log.listed(await action_log.read(store, sid)))[0].result == R.SERVER_ACTION_RESULT_RUNNING

    def stopped(r: state_pb2.InstanceRecord) -> None:
        r.server.task_state = T.TASK_STATE_UNSPECIFIED
        r.server.vm_state = V.VM_STATE_STOPPED

    await instances.update(store, sid, stopped)
    await action_log.conclude(store, sid, "stop")
    assert (action_log.listed(await action_log.read(store, sid)))[0].result == R.SERVER_ACTION_RESULT_SUCCESS


async def test_settle_ends_what_a_stopped_api_left_running_but_not_what_it_resumes(store: Store) -> None:
    sid = await put_server(store)
    with context.bound(ALICE):
        await action_log.update(store, sid, start_stop, "stop")
    record, _ = await instances.get(store, sid)
    assert await action_log.end_orphaned(store, record, ["stop"]) == 0
    record.server.task_state = T.TASK_STATE_UNSPECIFIED  # the compute finished; the api died before concluding
    assert await action_log.end_orphaned(store, record, []) == 1
    assert (action_log.listed(await action_log.read(store, sid)))[0].result == R.SERVER_ACTION_RESULT_SUCCESS


async def test_prune_keeps_the_newest_finished_and_every_running(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(action_log, "MAX_ACTIONS", 3)
    sid = await put_server(store)
    with context.bound(ALICE):
        made = [action_log.new_action(sid, str(i), "alice") for i in range(5)]
    made[0].result = made[1].result = made[3].result = R.SERVER_ACTION_RESULT_SUCCESS
    for action in made:
        key, value, _ = action_log.write(action)
        await store.put(key, value)
    await action_log.prune(store, sid)
    assert [a.action for a in action_log.listed(await action_log.read(store, sid))] == ["4", "3", "2"]


async def test_retire_ends_everything_and_puts_it_under_a_lease(store: Store) -> None:
    sid = await put_server(store)
    with context.bound(ALICE):
        for name in ("stop", "delete"):
            key, value, _ = action_log.write(action_log.new_action(sid, name, "alice"))
            await store.put(key, value)
    await action_log.retire(store, sid, retention_s=600)
    kvs, _ = await store.read_all(keys.server_actions(sid), most=100_000)
    assert all(kv.lease for kv in kvs) and len({kv.lease for kv in kvs}) == 1
    results = {a.action: (a.result, a.message) for a in action_log.listed(await action_log.read(store, sid))}
    assert results == {"delete": (R.SERVER_ACTION_RESULT_SUCCESS, ""),
                       "stop": (R.SERVER_ACTION_RESULT_CANCELLED, "the server was deleted")}  # fmt: skip
    await action_log.finish_action(store, sid, "stop")  # a later write keeps the lease
    kvs, _ = await store.read_all(keys.server_actions(sid), most=100_000)
    assert all(kv.lease for kv in kvs)


# ---- through the manager and the flows --------------------------------------------------------
async def actions_of(api: Api, sid: str, page_size: int = 0) -> list[pb.ServerAction]:
    reply = await api.servers.list_actions(pb.ListServerActionsRequest(id=sid, page_size=page_size))
    return list(reply.actions)


async def test_power_actions_record_their_steps_and_results(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.action(sid, "stop")
    await settled(api, sid)
    # the fake compute has no PowerOnInstance: the server is made ACTIVE again by hand
    await instances.update(api.store, sid, lambda r: setattr(r.server, "vm_state", V.VM_STATE_ACTIVE))
    api.compute.failing.add("PauseInstance")
    await api.servers.action(sid, "pause")
    await settled(api, sid)
    pause, stop = await actions_of(api, sid)
    assert (stop.action, stop.result, stop.user_id) == ("stop", R.SERVER_ACTION_RESULT_SUCCESS, "alice")
    assert [(e.name, e.host, e.result) for e in stop.events] == [("power off", HOST, R.SERVER_ACTION_RESULT_SUCCESS)]
    assert pause.result == R.SERVER_ACTION_RESULT_ERROR and "pause failed: PauseInstance broke" in pause.message
    assert pause.events[0].result == R.SERVER_ACTION_RESULT_ERROR and "broke" in pause.events[0].message


async def test_resize_and_snapshot_are_recorded_in_their_transactions(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.resize(sid, "wide")
    await settled(api, sid)
    await api.servers.action(sid, "confirm-resize")
    await settled(api, sid)
    await api.servers.snapshot(sid, "snap")
    await settled(api, sid)
    found = await actions_of(api, sid)
    assert [(a.action, a.result) for a in found] == [
        ("snapshot", R.SERVER_ACTION_RESULT_SUCCESS),
        ("confirm-resize", R.SERVER_ACTION_RESULT_SUCCESS),
        ("resize", R.SERVER_ACTION_RESULT_SUCCESS),
    ]
    assert [e.name for e in found[2].events] == ["resize"] and [e.name for e in found[0].events] == ["snapshot"]
    assert len(await actions_of(api, sid, page_size=1)) == 1


async def test_another_project_sees_nothing_and_a_deleted_servers_actions_stay(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.action(sid, "pause")
    await settled(api, sid)
    with context.bound(BOB), pytest.raises(NotFound):
        await actions_of(api, sid)

    async def destroy(request: object, **_: object) -> None:
        api.compute.calls.append("DestroyInstance")

    setattr(api.compute, "DestroyInstance", destroy)  # noqa: B010 (the fake answers only what it is given)
    await api.servers.delete(sid)
    await api.tasks.drain(5)
    with pytest.raises(NotFound):
        await api.servers.get(sid)
    delete, pause = await actions_of(api, sid)
    assert (delete.action, delete.result) == ("delete", R.SERVER_ACTION_RESULT_SUCCESS)
    assert [e.name for e in delete.events] == ["destroy"] and pause.result == R.SERVER_ACTION_RESULT_SUCCESS
    with context.bound(BOB), pytest.raises(NotFound):
        await actions_of(api, sid)
    with pytest.raises(NotFound):
        await actions_of(api, new_id())


async def test_listing_ends_an_action_whose_driver_died_after_the_compute_finished(api: Api) -> None:
    """The compute wrote ACTIVE, then the replica that drove the build died before it concluded
    the action: no flow is left to end it (the server needs no work), so the listing does."""
    sid = await active_server(api)
    await instances.update(api.store, sid, start_stop)
    with context.bound(ALICE):
        await action_log.update(api.store, sid, lambda r: False, "stop")  # nothing changes: no action
    found = await action_log.read(api.store, sid)
    assert found == []
    with context.bound(ALICE):
        await action_log.update(api.store, sid, lambda r: None, "stop")  # the request's action, RUNNING
    await instances.update(api.store, sid, lambda r: setattr(r.server, "task_state", T.TASK_STATE_UNSPECIFIED))
    (stop,) = await actions_of(api, sid)  # the compute finished; the driver died before concluding
    assert stop.result == R.SERVER_ACTION_RESULT_SUCCESS
    (stored,) = action_log.listed(await action_log.read(api.store, sid))
    assert stored.result == R.SERVER_ACTION_RESULT_SUCCESS  # written, not only shown

"""Flow ownership over a real etcd: one replica drives a server's flow, never two; a replica that
dies (its lease revoked, its drivers gone) is taken over by another's scan; a request that sets new
work while the owner is letting go is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.api.flows.owners import Flow, FlowOwners
from services.api.flows.record_events import RecordEvents
from services.api.flows.tasks import InstanceTasks
from services.core import instances, keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

T = servers_pb2.TaskState


class Plans:
    """A stand-in for the Servers manager: a server with task SPAWNING needs one flow, which
    clears the task (after ``gate`` opens); each run is counted by replica."""

    def __init__(self, store: Store, name: str, runs: list[str], gate: asyncio.Event) -> None:
        self._store, self._name, self.runs, self.gate = store, name, runs, gate

    def needs_work(self, record: state_pb2.InstanceRecord) -> bool:
        return record.server.task_state == T.TASK_STATE_SPAWNING

    async def next_flow(self, record: state_pb2.InstanceRecord) -> Flow | None:
        return self._flow(record.server.id) if self.needs_work(record) else None

    async def taking_over(self, record: state_pb2.InstanceRecord) -> None:
        return None

    async def _flow(self, instance_id: str) -> None:
        self.runs.append(self._name)
        await self.gate.wait()

        def done(r: state_pb2.InstanceRecord) -> None:
            r.server.task_state = T.TASK_STATE_UNSPECIFIED

        await instances.update(self._store, instance_id, done)


async def put_server(store: Store, instance_id: str, task: int = T.TASK_STATE_SPAWNING) -> None:
    record = state_pb2.InstanceRecord(server=servers_pb2.Server(id=instance_id, project_id="p", task_state=task))  # type: ignore[arg-type]
    await store.put(keys.instance(instance_id), record.SerializeToString())


def count_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prefix of every page ``store`` reads from now on."""
    pages: list[str] = []
    read_page = store.page

    async def counting(prefix: str, **kwargs: object) -> object:
        pages.append(prefix)
        return await read_page(prefix, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "page", counting)
    return pages


async def replica(store: Store, name: str, runs: list[str], gate: asyncio.Event) -> FlowOwners:
    owners = FlowOwners(store, InstanceTasks(), name, lease_ttl_s=2, scan_interval_s=0.2)
    owners.bind(Plans(store, name, runs, gate))
    return owners


async def settled(store: Store, instance_id: str, timeout_s: float = 10.0) -> state_pb2.InstanceRecord:
    async with asyncio.timeout(timeout_s):
        while True:
            record, _ = await instances.get(store, instance_id)
            owner = await store.get(keys.flow_owner(instance_id))
            if record.server.task_state == T.TASK_STATE_UNSPECIFIED and owner is None:
                return record
            await asyncio.sleep(0.05)


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def pair(store: Store, gate: asyncio.Event) -> AsyncIterator[tuple[FlowOwners, FlowOwners, list[str]]]:
    runs: list[str] = []
    a, b = await replica(store, "api-1", runs, gate), await replica(store, "api-2", runs, gate)
    yield a, b, runs
    gate.set()
    await a.stop(2)
    await b.stop(2)


@pytest.fixture
async def listening(store: Store, gate: asyncio.Event) -> AsyncIterator[tuple[FlowOwners, RecordEvents, list[str]]]:
    """One replica told of record changes (RecordEvents), scanning only when the test asks."""
    events = RecordEvents(store)
    await events.start()
    runs: list[str] = []
    owners = FlowOwners(store, InstanceTasks(), "api-1", lease_ttl_s=2, scan_interval_s=60, events=events)
    owners.bind(Plans(store, "api-1", runs, gate))
    yield owners, events, runs
    await owners.stop(2)
    await events.stop()


async def test_two_replicas_kicking_one_server_drive_it_once(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    a, b, runs = pair
    await put_server(store, "s1")
    await asyncio.gather(a.kick("s1", "p"), b.kick("s1", "p"), a.kick("s1", "p"))
    await asyncio.sleep(0.2)
    gate.set()
    await settled(store, "s1")
    assert len(runs) == 1


async def test_a_dead_owners_flow_is_taken_over_by_another_replica(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    a, b, runs = pair
    await put_server(store, "s2")
    await a.kick("s2", "p")
    await asyncio.sleep(0.2)
    assert runs == ["api-1"]
    await a.stop(0)  # api-1 dies mid-flow: its driver is gone, its lease with it
    await b.start()
    gate.set()
    await settled(store, "s2")
    assert runs == ["api-1", "api-2"]


async def test_a_scan_leaves_servers_a_live_replica_drives(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    a, b, runs = pair
    await put_server(store, "s3")
    await put_server(store, "idle", T.TASK_STATE_UNSPECIFIED)
    await a.kick("s3", "p")
    assert await b.scan() == 0  # owned by a live api-1; "idle" needs nothing
    gate.set()
    await settled(store, "s3")
    assert runs == ["api-1"]


async def test_work_set_while_the_owner_lets_go_is_driven(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    a, _, runs = pair
    gate.set()
    for round_ in range(5):  # each round: new work right as the previous flow ends
        await put_server(store, "s4")
        await a.kick("s4", "p")
        await settled(store, "s4")
        assert len(runs) == round_ + 1


async def test_an_unowned_flow_left_by_a_crash_is_found_by_the_scan(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    _, b, runs = pair
    await put_server(store, "s5")  # a request wrote the work, and its api died before it took it
    gate.set()
    await b.start()
    await settled(store, "s5")
    assert runs == ["api-2"]


async def test_with_record_events_a_scan_reads_only_the_servers_with_work(
    store: Store, gate: asyncio.Event, monkeypatch: pytest.MonkeyPatch,
    listening: tuple[FlowOwners, RecordEvents, list[str]],
) -> None:  # fmt: skip
    owners, _, runs = listening
    for i in range(20):
        await put_server(store, f"idle-{i}", T.TASK_STATE_UNSPECIFIED)
    assert await owners.scan() == 0  # the first scan reads every record
    listed = count_pages(store, monkeypatch)
    await put_server(store, "s6")  # work written by an api that died before it took it
    taken = 0
    for _ in range(100):  # until the change has reached the listener
        taken = await owners.scan()
        if taken:
            break
        await asyncio.sleep(0.05)
    assert taken == 1
    gate.set()
    await settled(store, "s6")
    assert runs == ["api-1"]
    assert keys.INSTANCES not in listed  # the later scans read s6 and its owner only


async def test_a_later_full_read_spreads_one_page_a_scan(
    store: Store, gate: asyncio.Event, monkeypatch: pytest.MonkeyPatch,
    listening: tuple[FlowOwners, RecordEvents, list[str]],
) -> None:  # fmt: skip
    owners, events, _ = listening
    for i in range(600):  # three pages of records without work
        await put_server(store, f"idle-{i:03}", T.TASK_STATE_UNSPECIFIED)
    pages = count_pages(store, monkeypatch)
    assert await owners.scan() == 0 and len(pages) == 3  # the first read, at start: every page
    await events.stop()  # a gap: the change below is missed, only a full read finds it
    await put_server(store, "idle-999")  # work behind the last page
    owners._full_at -= 3600  # the next full read is due
    taken = []
    for _ in range(3):
        pages.clear()
        taken.append(await owners.scan())
        assert pages == [keys.INSTANCES]  # one page a scan
    assert taken == [0, 0, 1]
    gate.set()
    await settled(store, "idle-999")


async def test_a_live_replicas_periodic_scan_takes_over_a_peer_that_dies_later(
    store: Store, gate: asyncio.Event, pair: tuple[FlowOwners, FlowOwners, list[str]]
) -> None:
    """api-2 is up and scanning before api-1 dies: only its periodic scan (not its start) can find
    the flow."""
    a, b, runs = pair
    await put_server(store, "s-late")
    await a.kick("s-late", "p")
    await b.start()  # its start-up scan leaves the server to its live owner
    await asyncio.sleep(0.3)
    assert runs == ["api-1"]
    await a.stop(0)  # api-1 dies mid-flow, after api-2's start-up scan
    gate.set()
    await settled(store, "s-late")
    assert runs == ["api-1", "api-2"]

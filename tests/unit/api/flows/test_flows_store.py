"""The action, resize and snapshot flows against a real etcd, with a compute that keeps the contract
(it writes each outcome into the record; a snapshot goes through the ImageStore) or fails on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from services.api.flavors.manager import FlavorsManager
from services.api.flows import actions, snapshot_start
from services.api.flows.base import Limits
from services.api.flows.orchestrator import Orchestrator
from services.api.flows.owners import FlowOwners
from services.api.flows.request_spec import SpecResolver, resources_of
from services.api.flows.tasks import InstanceTasks
from services.api.images.files import ImageFiles
from services.api.images.manager import ImagesManager
from services.api.images.store import ImageStoreManager
from services.api.peers import Peers
from services.api.server_groups.manager import ServerGroupsManager
from services.api.servers.manager import ServersManager
from services.core import claims, context, instances, keys
from services.core.context import RequestContext
from services.core.errors import FailedPrecondition, Internal, InvalidArgument, NotFound, ResourceExhausted
from services.core.etcd import Store
from services.core.ids import new_id
from stratus.compute.v1 import compute_pb2
from stratus.imagestore.v1 import imagestore_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import flavors_pb2, images_pb2
from stratus.v1 import servers_pb2 as pb

V = pb.VmState
T = pb.TaskState
P = pb.PowerState
ALICE = RequestContext("alice", "alice", frozenset({"member"}))
HOST = "h1"
DISK = b"qcow2 disk bytes " * 1000

# compute method -> the vm and power states it records
OUTCOMES: dict[str, tuple[int, int]] = {
    "PauseInstance": (V.VM_STATE_PAUSED, P.POWER_STATE_PAUSED),
    "UnpauseInstance": (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING),
    "SuspendInstance": (V.VM_STATE_SUSPENDED, P.POWER_STATE_SUSPENDED),
    "ResumeInstance": (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING),
    "PowerOffInstance": (V.VM_STATE_STOPPED, P.POWER_STATE_SHUTDOWN),
    "ResizeInstance": (V.VM_STATE_RESIZED, P.POWER_STATE_RUNNING),
    "ConfirmResizeInstance": (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING),
    "RevertResizeInstance": (V.VM_STATE_ACTIVE, P.POWER_STATE_RUNNING),
}


@dataclass
class FakeCompute:
    store: Store
    images: ImageStoreManager
    failing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method not in OUTCOMES:
            raise AttributeError(method)
        vm, power = OUTCOMES[method]

        def record(r: state_pb2.InstanceRecord) -> None:
            r.server.vm_state, r.server.power_state = vm, power  # type: ignore[assignment]
            r.server.task_state = T.TASK_STATE_UNSPECIFIED

        async def act(request: Any, **_: Any) -> None:
            self._called(method)
            await instances.update(self.store, request.instance_id, record)

        return act

    def _called(self, method: str) -> None:
        self.calls.append(method)
        if method in self.failing:
            raise Internal(f"{method} broke", reason="DRIVER_FAILED")

    async def SnapshotInstance(self, request: Any, **_: Any) -> None:
        self._called("SnapshotInstance")

        async def stream() -> AsyncIterator[imagestore_pb2.WriteImageRequest]:
            yield imagestore_pb2.WriteImageRequest(image_id=request.image_id)
            for i in range(0, len(DISK), 4096):
                yield imagestore_pb2.WriteImageRequest(chunk=DISK[i : i + 4096])

        await self.images.write(stream())
        outcome = state_pb2.ComputeReport(host=HOST, call="snapshot", image_id=request.image_id)
        await instances.update(self.store, request.instance_id, lambda r: r.report.CopyFrom(outcome))

    async def DestroyInstance(self, request: Any, **_: Any) -> None:
        self._called("DestroyInstance")

    async def GetConsoleOutput(self, request: Any, **_: Any) -> Any:
        self._called("GetConsoleOutput")
        return compute_pb2.GetConsoleOutputResponse(output=f"console of {request.instance_id}, {request.lines}\n")


class FakePeers:
    def __init__(self, compute: FakeCompute) -> None:
        self._compute = compute

    def incarnation(self, binary: str, host: str) -> int:
        return 1  # one compute process, never restarted

    def compute(self, host: str) -> FakeCompute:
        assert host == HOST
        return self._compute


@dataclass
class Api:
    store: Store
    servers: ServersManager
    images: ImagesManager
    image_store: ImageStoreManager
    compute: FakeCompute
    tasks: InstanceTasks
    owners: FlowOwners
    tiny: flavors_pb2.Flavor


@pytest.fixture
async def api(store: Store, tmp_path: Path) -> AsyncIterator[Api]:
    flavors = FlavorsManager(store)
    images = ImagesManager(store, ImageFiles(tmp_path / "images"))
    await flavors.seed()
    with context.bound(context.SYSTEM):  # the stack seeds, as the api does at start-up
        await images.seed()
    for name, ram in (("wide", 64), ("big", 2048)):
        await flavors.create(flavors_pb2.Flavor(name=name, vcpus=2, ram_mb=ram, disk_gb=10 if ram > 64 else 1))
    image_store = ImageStoreManager(store, images)
    compute = FakeCompute(store, image_store)
    specs = SpecResolver(store, flavors, images, ServerGroupsManager(store))
    flows = Orchestrator(store, cast(Peers, FakePeers(compute)), specs, images, Limits())
    tasks = InstanceTasks()
    owners = FlowOwners(store, tasks, "api-test", scan_interval_s=60)  # the tests scan themselves
    servers = ServersManager(store, specs, ServerGroupsManager(store), flows, owners)
    caps = state_pb2.HostCapabilities(host=HOST, vcpus=8, ram_mb=4096, disk_gb=100)
    await store.put(keys.host_capabilities(HOST), caps.SerializeToString())
    context.bind(ALICE)
    yield Api(store, servers, images, image_store, compute, tasks, owners, await flavors.get("m1.tiny"))
    await owners.stop(5)


async def active_server(api: Api, vm: int = V.VM_STATE_ACTIVE) -> str:
    """A server as a finished build leaves it: on HOST, with its claim there."""
    tiny_image = await api.images.get("tiny")
    server = pb.Server(id=new_id(), name="s", project_id="alice", flavor_id=api.tiny.id,
                       image_id=tiny_image.id, host=HOST, vm_state=vm, power_state=P.POWER_STATE_RUNNING,  # type: ignore[arg-type]
                       resources=resources_of(api.tiny), user_data=b"#!/bin/sh\n")  # fmt: skip
    record = state_pb2.InstanceRecord(server=server)
    instances.stamp(record)
    await api.store.put(keys.instance(server.id), record.SerializeToString())
    usage, revision = await claims.read_usage(api.store, HOST)
    claim = claims.sized(state_pb2.Claim(instance_id=server.id, project_id="alice"), server.resources, api.tiny.id)
    assert await claims.try_claim(api.store, HOST, claim, usage, revision)
    return server.id


async def settled(api: Api, server_id: str) -> pb.Server:
    await api.tasks.drain(5)
    return await api.servers.get(server_id)


async def held(api: Api, server_id: str) -> tuple[int, int, int]:
    usage, _ = await claims.read_usage(api.store, HOST)
    c = usage.claims[server_id]
    return c.vcpus, c.ram_mb, c.disk_gb


async def test_pause_unpause_suspend_resume_round_trip(api: Api) -> None:
    sid = await active_server(api)
    for action, task, status in (
        ("pause", T.TASK_STATE_PAUSING, pb.ServerStatus.SERVER_STATUS_PAUSED),
        ("unpause", T.TASK_STATE_UNPAUSING, pb.ServerStatus.SERVER_STATUS_ACTIVE),
        ("suspend", T.TASK_STATE_SUSPENDING, pb.ServerStatus.SERVER_STATUS_SUSPENDED),
        ("resume", T.TASK_STATE_RESUMING, pb.ServerStatus.SERVER_STATUS_ACTIVE),
    ):
        started = await api.servers.action(sid, action)
        assert started.task_state == task
        done = await settled(api, sid)
        assert (done.status, done.task_state) == (status, T.TASK_STATE_UNSPECIFIED)
    assert api.compute.calls == ["PauseInstance", "UnpauseInstance", "SuspendInstance", "ResumeInstance"]


async def test_wrong_states_are_refused_and_change_nothing(api: Api) -> None:
    sid = await active_server(api)
    for action in ("unpause", "resume", "confirm-resize", "revert-resize", "start"):
        with pytest.raises(FailedPrecondition) as info:
            await api.servers.action(sid, action)
        assert "ACTIVE" in info.value.message
    await api.servers.action(sid, "pause")
    await settled(api, sid)
    with pytest.raises(FailedPrecondition, match="PAUSED"):
        await api.servers.action(sid, "resume")
    assert (await api.servers.get(sid)).status == pb.ServerStatus.SERVER_STATUS_PAUSED


async def test_a_failed_action_clears_the_task_and_says_why(api: Api) -> None:
    sid = await active_server(api)
    api.compute.failing.add("SuspendInstance")
    await api.servers.action(sid, "suspend")
    done = await settled(api, sid)
    assert (done.vm_state, done.task_state) == (V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED)
    assert done.fault.code == "INTERNAL" and "suspend failed" in done.fault.message
    await api.servers.action(sid, "pause")  # the next action starts afresh, without the fault
    assert not (await settled(api, sid)).HasField("fault")


async def test_resize_then_confirm(api: Api) -> None:
    sid = await active_server(api)
    started = await api.servers.resize(sid, "big")
    assert (started.flavor_id, started.resources.ram_mb) != (api.tiny.id, 128)
    assert started.status == pb.ServerStatus.SERVER_STATUS_RESIZE
    assert await held(api, sid) == (2, 2048, 11)  # both disks until confirmed
    waiting = await settled(api, sid)
    assert waiting.status == pb.ServerStatus.SERVER_STATUS_VERIFY_RESIZE
    await api.servers.action(sid, "confirm-resize")
    done = await settled(api, sid)
    assert done.status == pb.ServerStatus.SERVER_STATUS_ACTIVE and done.resources.ram_mb == 2048
    assert await held(api, sid) == (2, 2048, 10)
    record, _ = await instances.get(api.store, sid)
    assert not record.HasField("resize")


async def test_resize_then_revert(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.resize(sid, "wide")  # fewer MiB, more vCPUs: the claim holds the max of each, both disks
    assert await held(api, sid) == (2, 128, 2)
    await settled(api, sid)
    reverting = await api.servers.action(sid, "revert-resize")
    assert reverting.status == pb.ServerStatus.SERVER_STATUS_REVERT_RESIZE
    assert reverting.flavor_id == api.tiny.id  # the old size is back in the server at once
    done = await settled(api, sid)
    assert (done.status, done.flavor_id, done.resources) == (
        pb.ServerStatus.SERVER_STATUS_ACTIVE, api.tiny.id, resources_of(api.tiny)
    )  # fmt: skip
    assert await held(api, sid) == (1, 128, 1)


async def test_resize_refusals_change_nothing(api: Api) -> None:
    sid = await active_server(api)
    before = await api.store.get(keys.instance(sid))
    with pytest.raises(InvalidArgument) as info:
        await api.servers.resize(sid, "m1.tiny")
    assert info.value.violations[0][0] == "flavor_id"
    with pytest.raises(NotFound) as missing:
        await api.servers.resize(sid, "no-such-flavor")
    assert missing.value.field == "flavor_id"
    other = await active_server(api)
    await api.store.put(keys.host_capabilities(HOST), state_pb2.HostCapabilities(
        host=HOST, vcpus=8, ram_mb=2048, disk_gb=100).SerializeToString())  # fmt: skip
    with pytest.raises(ResourceExhausted):
        await api.servers.resize(sid, "big")  # 2048 + the other server's 128 > 2048
    after = await api.store.get(keys.instance(sid))
    assert before is not None and after is not None and after.mod_revision == before.mod_revision
    assert await held(api, sid) == (1, 128, 1) and await held(api, other) == (1, 128, 1)


async def test_a_failed_resize_puts_the_old_size_back(api: Api) -> None:
    sid = await active_server(api)
    api.compute.failing.add("ResizeInstance")
    await api.servers.resize(sid, "big")
    done = await settled(api, sid)
    assert (done.status, done.flavor_id) == (pb.ServerStatus.SERVER_STATUS_ACTIVE, api.tiny.id)
    assert "resize failed" in done.fault.message
    assert await held(api, sid) == (1, 128, 1)


async def test_a_failed_revert_keeps_the_new_size(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.resize(sid, "big")
    await settled(api, sid)
    api.compute.failing.add("RevertResizeInstance")
    await api.servers.action(sid, "revert-resize")
    done = await settled(api, sid)
    assert (done.status, done.resources.ram_mb) == (pb.ServerStatus.SERVER_STATUS_VERIFY_RESIZE, 2048)
    assert "revert resize failed" in done.fault.message
    api.compute.failing.clear()
    await api.servers.action(sid, "confirm-resize")
    assert (await settled(api, sid)).resources.ram_mb == 2048
    assert await held(api, sid) == (2, 2048, 10)


async def test_recovery_settles_a_resize_the_compute_finished(api: Api) -> None:
    sid = await active_server(api)
    await api.servers.resize(sid, "big")
    await settled(api, sid)
    assert await api.owners.scan() == 0  # VERIFY_RESIZE waits for the user: nothing to resume

    def compute_confirmed(r: state_pb2.InstanceRecord) -> None:  # ... and the api died before settling
        r.server.vm_state, r.server.task_state = V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED

    await instances.update(api.store, sid, compute_confirmed)
    assert await api.owners.scan() == 1
    await api.tasks.drain(5)
    record, _ = await instances.get(api.store, sid)
    assert not record.HasField("resize") and await held(api, sid) == (2, 2048, 10)


async def test_snapshot_saves_an_image_of_the_caller(api: Api) -> None:
    sid = await active_server(api, V.VM_STATE_STOPPED)
    image = await api.servers.snapshot(sid, "backup")
    assert image.status == images_pb2.ImageStatus.IMAGE_STATUS_SAVING
    assert (image.owner_project_id, image.disk_format, image.name) == ("alice", "qcow2", "backup")
    assert image.properties["instance_uuid"] == sid and image.properties["hw_firmware_type"] == "bios"
    assert (await api.servers.get(sid)).task_state == T.TASK_STATE_IMAGE_SNAPSHOT
    done = await settled(api, sid)
    assert (done.task_state, done.vm_state) == (T.TASK_STATE_UNSPECIFIED, V.VM_STATE_STOPPED)
    saved = await api.images.get(image.id)
    assert saved.status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE and saved.size_bytes == len(DISK)
    assert b"".join([c async for c in api.images.read_bytes(image.id)]) == DISK


async def test_a_failed_snapshot_leaves_no_image_and_no_fault(api: Api) -> None:
    sid = await active_server(api)
    api.compute.failing.add("SnapshotInstance")
    image = await api.servers.snapshot(sid, "doomed")
    done = await settled(api, sid)
    assert done.task_state == T.TASK_STATE_UNSPECIFIED and not done.HasField("fault")
    with pytest.raises(NotFound):
        await api.images.get(image.id)


async def test_snapshot_refusals(api: Api) -> None:
    sid = await active_server(api, V.VM_STATE_RESIZED)
    with pytest.raises(FailedPrecondition, match="VERIFY_RESIZE"):
        await api.servers.snapshot(sid, "nope")
    with pytest.raises(InvalidArgument) as info:
        await api.servers.snapshot(sid, "")
    assert info.value.violations[0][0] == "image_name"
    assert [i.name for i in (await api.images.list(0, "")).images] == ["tiny"]  # no image was made


async def test_a_snapshot_is_resumed_into_its_saving_image(api: Api) -> None:
    sid = await active_server(api)
    server = await api.servers.get(sid)
    image = snapshot_start.snapshot_image("again", server, None, "alice")
    await snapshot_start.begin_snapshot(api.store, sid, image)  # what an api wrote before it died
    assert await api.owners.scan() == 1
    done = await settled(api, sid)
    assert done.task_state == T.TASK_STATE_UNSPECIFIED
    assert (await api.images.get(image.id)).status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE
    await instances.update(api.store, sid, lambda r: actions.begin("snapshot", r.server))  # no image left
    assert await api.owners.scan() == 1
    assert (await settled(api, sid)).task_state == T.TASK_STATE_UNSPECIFIED


async def test_deleting_a_server_discards_a_snapshot_left_saving_by_a_dead_replica(api: Api) -> None:
    sid = await active_server(api)
    server = await api.servers.get(sid)
    image = snapshot_start.snapshot_image("orphan", server, None, "alice")
    await snapshot_start.begin_snapshot(api.store, sid, image)  # what an api wrote before it died

    def cleared(r: state_pb2.InstanceRecord) -> None:  # the task given up, the image left SAVING
        r.server.task_state = T.TASK_STATE_UNSPECIFIED

    await instances.update(api.store, sid, cleared)
    await api.servers.delete(sid)
    await api.tasks.drain(5)
    with pytest.raises(NotFound):
        await api.servers.get(sid)
    with pytest.raises(NotFound):
        await api.images.get(image.id)


async def test_console_output(api: Api) -> None:
    sid = await active_server(api)
    assert await api.servers.console_output(sid, 10) == f"console of {sid}, 10\n"
    for lines in (-1, 10001):
        with pytest.raises(InvalidArgument) as info:
            await api.servers.console_output(sid, lines)
        assert info.value.violations[0][0] == "lines"
    await instances.update(api.store, sid, lambda r: setattr(r.server, "host", ""))
    with pytest.raises(FailedPrecondition, match="no host"):
        await api.servers.console_output(sid, 0)


async def test_image_store_reads_active_images_only(api: Api) -> None:
    tiny = await api.images.get("tiny")
    messages = [m async for m in api.image_store.read(tiny.id)]
    assert messages[0].image.id == tiny.id
    assert sum(len(m.chunk) for m in messages[1:]) == tiny.size_bytes
    assert all(len(m.chunk) <= 1024 * 1024 for m in messages[1:])
    saving = images_pb2.Image(id="img-saving", name="x", status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING)
    await api.images.put(saving)
    with pytest.raises(FailedPrecondition, match="SAVING"):
        _ = [m async for m in api.image_store.read("img-saving")]
    with pytest.raises(NotFound):
        _ = [m async for m in api.image_store.read("no-such-image")]


async def writes(*messages: imagestore_pb2.WriteImageRequest) -> AsyncIterator[imagestore_pb2.WriteImageRequest]:
    for m in messages:
        yield m


async def test_image_store_writes_saving_images_and_deletes_a_failed_one(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tiny = await api.images.get("tiny")
    with pytest.raises(FailedPrecondition, match="ACTIVE"):
        await api.image_store.write(writes(imagestore_pb2.WriteImageRequest(image_id=tiny.id)))
    with pytest.raises(InvalidArgument):
        await api.image_store.write(writes(imagestore_pb2.WriteImageRequest(chunk=b"x")))
    for image_id in ("img-ok", "img-big"):
        await api.images.put(images_pb2.Image(id=image_id, name="w", owner_project_id="demo",
                                              status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING))
    saved = await api.image_store.write(writes(imagestore_pb2.WriteImageRequest(image_id="img-ok"),
                                               imagestore_pb2.WriteImageRequest(chunk=b"0123456789")))  # fmt: skip
    assert (saved.status, saved.size_bytes) == (images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE, 10)
    found = await api.images.find("img-ok")  # ImageStore (the computes) sees every project's images
    assert found is not None and found[0].checksum == saved.checksum
    monkeypatch.setattr(api.images, "_max_bytes", 10)  # a project's snapshot is bound by the limit
    with pytest.raises(InvalidArgument):
        await api.image_store.write(writes(imagestore_pb2.WriteImageRequest(image_id="img-big"),
                                           imagestore_pb2.WriteImageRequest(chunk=b"x" * 11)))  # fmt: skip
    assert await api.images.find("img-big") is None
    assert not [p for p in (tmp_path / "images").iterdir() if p.name.startswith("img-big")]

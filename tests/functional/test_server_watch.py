"""List then watch through the public API: a watch from a listing's revision replays exactly the
changes a live watch saw, a reconnect from an event's revision neither loses nor repeats one, pages
of one listing agree, compacted history is OUT_OF_RANGE, and ``server list --watch`` follows on."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import servers_pb2
from tests.support.stack import ROOT, Stack

DELETED = servers_pb2.SERVER_EVENT_TYPE_DELETED
Seen = tuple[int, int, int, int]


def create(stack: Stack, name: str) -> str:
    req = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny"))
    return str(stack.servers.CreateServer(req, metadata=stack.md("demo")).id)


def delete(stack: Stack, server_id: str) -> None:
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md("demo"))
    stack.wait_gone(server_id)


def watch(stack: Stack, revision: int) -> grpc.Call:
    request = servers_pb2.WatchServersRequest(revision=revision)
    return stack.servers.WatchServers(request, metadata=stack.md("demo"), timeout=120)  # type: ignore[no-any-return]


def until_deleted(stream: Iterable[servers_pb2.ServerEvent], server_id: str) -> list[Seen]:
    """(type, status, task_state, revision) of each event of one server, to its deletion."""
    out: list[Seen] = []
    for event in stream:
        if event.server.id == server_id:
            out.append((event.type, event.server.status, event.server.task_state, event.revision))
            if event.type == DELETED:
                break
    stream.cancel()  # type: ignore[attr-defined]
    return out


def reason_and_metadata(err: grpc.RpcError) -> tuple[str, dict[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, dict(info.metadata)
    return "", {}


def test_a_watch_from_the_listing_revision_replays_what_a_live_watch_saw(stack: Stack) -> None:
    listing = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md("demo"))
    assert listing.revision > 0
    live_stream = watch(stack, listing.revision)
    live: list[Seen] = []
    holder: dict[str, str] = {}
    ready = threading.Event()

    def follow() -> None:
        ready.wait()
        live.extend(until_deleted(live_stream, holder["id"]))

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    holder["id"] = sid = create(stack, f"replay-{uuid.uuid4().hex[:6]}")
    ready.set()
    stack.wait_for_server(sid, {"ACTIVE"}, who="demo")
    delete(stack, sid)
    t.join(120)
    replay = until_deleted(watch(stack, listing.revision), sid)
    assert replay == live
    assert replay[0][0] == servers_pb2.SERVER_EVENT_TYPE_CREATED and replay[-1][0] == DELETED
    assert any(status == servers_pb2.SERVER_STATUS_ACTIVE for _, status, _, _ in replay)
    assert [rev for *_, rev in replay] == sorted({rev for *_, rev in replay})  # in order, none twice
    for cut in (1, len(replay) // 2, len(replay) - 1):  # the stream breaks after `cut` events
        assert replay[:cut] + until_deleted(watch(stack, replay[cut - 1][3]), sid) == replay


def test_pages_agree_and_compacted_history_is_out_of_range(stack: Stack) -> None:
    name = f"paged-{uuid.uuid4().hex[:6]}"
    ids = [create(stack, name), create(stack, name)]
    request = servers_pb2.ListServersRequest(page_size=1, filter=f"name={name}")
    first = stack.servers.ListServers(request, metadata=stack.md("demo"))
    for sid in ids:
        delete(stack, sid)
    request.page_token = first.next_page_token
    second = stack.servers.ListServers(request, metadata=stack.md("demo"))
    assert second.revision == first.revision and not second.next_page_token
    assert sorted(s.id for s in [*first.servers, *second.servers]) == sorted(ids)  # as they were at that revision
    assert not stack.servers.ListServers(servers_pb2.ListServersRequest(filter=f"name={name}"),
                                         metadata=stack.md("demo")).servers  # fmt: skip

    async def compact() -> int:
        store = stack.etcd_store()
        await store.connect()
        try:
            _, now = await store.get_with_revision("")
            await store.compact(now)
            return now
        finally:
            await store.close()

    now = asyncio.run(compact())
    with pytest.raises(grpc.RpcError) as page_err:
        stack.servers.ListServers(request, metadata=stack.md("demo"))
    assert page_err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert reason_and_metadata(page_err.value)[0] == "REVISION_COMPACTED"
    with pytest.raises(grpc.RpcError) as watch_err:
        next(iter(watch(stack, first.revision)))
    assert watch_err.value.code() == grpc.StatusCode.OUT_OF_RANGE and "list" in (watch_err.value.details() or "")
    assert reason_and_metadata(watch_err.value) == (
        "REVISION_COMPACTED",
        {"revision": str(first.revision), "compact_revision": str(now)},
    )


def test_a_revision_not_reached_or_negative_is_invalid(stack: Stack) -> None:
    listing = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md("demo"))
    for bad in (listing.revision + 10**9, -1):
        with pytest.raises(grpc.RpcError) as err:
            next(iter(watch(stack, bad)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "revision" in (err.value.details() or "")


def test_cli_list_watch_follows_from_the_listing(stack: Stack) -> None:
    sid = create(stack, f"cli-watch-{uuid.uuid4().hex[:6]}")
    cmd = [sys.executable, "-m", "services.cli.main", "server", "list", "--watch", "-f", "value",
           "--token", stack.info["demo_token"], "--state-dir", str(stack.state_dir)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = iter(proc.stdout.readline, "")
        assert any(sid in line for line in lines)  # listed: the watch goes on from the listing's revision
        delete(stack, sid)
        events = []
        for line in lines:
            if sid in line:
                events.append(line.split()[:2])
                if events[-1][1] == "DELETED":
                    break
        revisions = [int(revision) for revision, _ in events]
        assert events[-1][1] == "DELETED" and revisions == sorted(set(revisions))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""Following servers: list, then watch from the listing's revision, so that no change is lost or
shown twice; a broken stream resumes after the last revision it delivered.

``wait_for`` follows one server until a condition holds (its watch starts with the server's state
at a revision and goes on from there), with a GetServer poll whenever the stream is quiet (so a
missed or unsupported stream only slows it down), and reports each change of its status and task
on stderr, a line each. ``list_and_follow`` lists every page of a
listing (all read at its first page's revision) and then hands on every change after it.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from services.cli import output
from services.cli.client import Api
from stratus.v1 import servers_pb2

POLL_S = 1.0
BACKOFF_START_S = 0.2
BACKOFF_CAP_S = 5.0
Done = Callable[[servers_pb2.Server | None], bool]
RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


class WaitTimeout(Exception):
    def __init__(self, last: servers_pb2.Server | None) -> None:
        super().__init__("timed out")
        self.last = last


def get_or_none(api: Api, server_id: str) -> servers_pb2.Server | None:
    """The server, or None once it is gone (NOT_FOUND)."""
    try:
        server: servers_pb2.Server = api.call(api.servers.GetServer, servers_pb2.GetServerRequest(id=server_id))
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return server


class Stream:
    """WatchServers from ``revision`` on, reopened after a break from the last revision it delivered;
    ``compacted`` says what to do when that revision is too old (OUT_OF_RANGE): return the revision
    to start again from (0: from now), or raise."""

    def __init__(self, api: Api, request: servers_pb2.WatchServersRequest, compacted: Callable[[], int]) -> None:
        self.api = api
        self.request = request
        self.compacted = compacted
        self.closed = threading.Event()
        self._call: Any = None

    def __iter__(self) -> Iterator[servers_pb2.ServerEvent]:
        backoff = BACKOFF_START_S
        while not self.closed.is_set():
            self._call = self.api.servers.WatchServers(self.request, metadata=self.api.metadata)
            if self.closed.is_set():  # closed while it opened
                self._call.cancel()
            try:
                for event in self._call:
                    backoff = BACKOFF_START_S
                    self.request.revision = event.revision
                    yield event
                return  # the server ended it (the watch of one server ends at its delete)
            except grpc.RpcError as err:
                if self.closed.is_set():
                    return
                if err.code() == grpc.StatusCode.OUT_OF_RANGE:
                    self.request.revision = self.compacted()
                    continue
                if err.code() not in RESUMABLE:
                    raise
            self.closed.wait(backoff)  # the api restarted or a proxy dropped us: resume where we were
            backoff = min(backoff * 2, BACKOFF_CAP_S)

    def close(self) -> None:
        self.closed.set()
        if self._call is not None:
            self._call.cancel()


class Follower:
    """Puts each state of one server on ``changes`` (None: deleted) while open: first its state at
    the watch's revision, then each change after it."""

    def __init__(self, api: Api, server_id: str) -> None:
        self.server_id = server_id
        self.changes: queue.Queue[servers_pb2.Server | None] = queue.Queue()
        request = servers_pb2.WatchServersRequest(id=server_id)
        self._stream = Stream(api, request, compacted=lambda: 0)  # from now: the watch restates the server

    def __enter__(self) -> Follower:
        threading.Thread(target=self._pump, name="watch-server", daemon=True).start()
        return self

    def _pump(self) -> None:
        try:
            for event in self._stream:
                if event.server.id != self.server_id:
                    continue
                deleted = event.type == servers_pb2.SERVER_EVENT_TYPE_DELETED
                self.changes.put(None if deleted else event.server)
        except grpc.RpcError:
            return  # gone (NOT_FOUND), or no watch on this api: polling carries on

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


def describe(server: servers_pb2.Server | None, server_id: str) -> str:
    if server is None:
        return f"server {server_id}: gone"
    task = output.enum_label(server, "task_state")
    status = output.enum_label(server, "status") or "UNKNOWN"
    return f"server {server.name} ({server.id}): {status}" + (f" ({task.lower()})" if task else "")


def state_of(server: servers_pb2.Server | None) -> tuple[int, int] | None:
    """What ``--wait`` reports a change of: the status and the task (None: gone)."""
    return None if server is None else (server.status, server.task_state)


def wait_for(
    api: Api, server_id: str, done: Done, timeout_s: float, progress: Callable[[str], None] = output.err
) -> servers_pb2.Server | None:
    """Follows the server until ``done`` says so; returns it (None: gone). Each change of its status
    or task is a line to ``progress`` (stderr: stdout keeps only the result), the first state and
    the last included: ``  2.1s server web (<id>): BUILD (spawning)``."""
    start = time.monotonic()
    deadline = start + timeout_s
    shown: tuple[int, int] | bool | None = False  # False: nothing shown yet

    def show(server: servers_pb2.Server | None) -> None:
        nonlocal shown
        if state_of(server) != shown:
            shown = state_of(server)
            progress(f"{time.monotonic() - start:5.1f}s {describe(server, server_id)}")

    with Follower(api, server_id) as follower:
        try:  # the watch's first event is the server's state at the revision it goes on from
            current = follower.changes.get(timeout=POLL_S)
        except queue.Empty:
            current = get_or_none(api, server_id)
        show(current)
        while not done(current):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(current)
            try:
                current = follower.changes.get(timeout=min(POLL_S, remaining))
            except queue.Empty:
                current = get_or_none(api, server_id)
            show(current)
    return current


# ---- a listing, then its changes ------------------------------------------------------------
def list_at_revision(api: Api, request: servers_pb2.ListServersRequest) -> tuple[list[servers_pb2.Server], int]:
    """Every page of a listing (they all read at the first page's revision) and that revision."""
    request.page_token = ""
    servers: list[servers_pb2.Server] = []
    while True:
        reply: servers_pb2.ListServersResponse = api.call(api.servers.ListServers, request)
        servers.extend(reply.servers)
        if not reply.next_page_token:
            return servers, reply.revision
        request.page_token = reply.next_page_token


def list_and_follow(
    api: Api,
    request: servers_pb2.ListServersRequest,
    on_list: Callable[[list[servers_pb2.Server]], None],
    on_event: Callable[[servers_pb2.ServerEvent], None],
) -> None:
    """Lists (``on_list``), then hands every change after the listing's revision to ``on_event``
    until interrupted; when that history is compacted it lists again (``on_list`` once more)."""

    def relist() -> int:
        servers, revision = list_at_revision(api, request)
        on_list(servers)
        return revision

    watch = servers_pb2.WatchServersRequest(all_projects=request.all_projects, revision=relist())
    stream = Stream(api, watch, compacted=relist)
    try:
        for event in stream:
            on_event(event)
    finally:
        stream.close()


def print_changes(
    api: Api,
    request: servers_pb2.ListServersRequest,
    fmt: output.Format,
    columns: Any,
    extra: output.Extra | None = None,
) -> None:
    """``server list --watch``: the list, then one line per change (``REVISION TYPE server ...``;
    with ``-f json`` or ``-f yaml`` one JSON object per line, its server with ``extra``'s fields)
    until Ctrl-C."""

    def on_list(servers: list[servers_pb2.Server]) -> None:
        output.emit_list(fmt, columns, servers, extra=extra)

    def on_event(event: servers_pb2.ServerEvent) -> None:
        if fmt in (output.Format.json, output.Format.yaml):
            data = output.to_dict(event)
            if extra is not None and isinstance(data.get("server"), dict):
                data["server"] = output.with_extra(data["server"], extra(event.server))
            sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
        else:
            kind = output.enum_label(event, "type") or "UPDATED"
            sys.stdout.write(f"{event.revision} {kind} {describe(event.server, event.server.id)}\n")
        sys.stdout.flush()

    try:
        list_and_follow(api, request, on_list, on_event)
    except KeyboardInterrupt:
        return

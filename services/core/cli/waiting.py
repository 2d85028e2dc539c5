"""Following one server until a condition holds: a WatchServers stream read on a thread, with a
GetServer poll whenever the stream is quiet (so a missed or unsupported stream only slows it down)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import grpc

from services.core.cli import output
from services.core.cli.client import Api
from stratus.v1 import servers_pb2

POLL_S = 1.0
Done = Callable[[servers_pb2.Server | None], bool]


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


class Follower:
    """Puts each change of one server on ``changes`` (None: deleted) while open."""

    def __init__(self, api: Api, server_id: str) -> None:
        self.api = api
        self.server_id = server_id
        self.changes: queue.Queue[servers_pb2.Server | None] = queue.Queue()
        self._call: grpc.Call | None = None

    def __enter__(self) -> Follower:
        request = servers_pb2.WatchServersRequest(id=self.server_id)
        self._call = self.api.servers.WatchServers(request, metadata=self.api.metadata)
        threading.Thread(target=self._pump, name="watch-server", daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self._call is not None
        try:
            for event in self._call:
                if event.server.id != self.server_id:
                    continue
                deleted = event.type == servers_pb2.SERVER_EVENT_TYPE_DELETED
                self.changes.put(None if deleted else event.server)
        except grpc.RpcError:
            return  # cancelled on exit, or no watch on this api: polling carries on

    def __exit__(self, *exc: object) -> None:
        if self._call is not None:
            self._call.cancel()


def describe(server: servers_pb2.Server | None, server_id: str) -> str:
    if server is None:
        return f"server {server_id}: gone"
    task = output.enum_label(server, "task_state")
    status = output.enum_label(server, "status") or "UNKNOWN"
    return f"server {server.name} ({server.id}): {status}" + (f" ({task.lower()})" if task else "")


def wait_for(api: Api, server_id: str, done: Done, timeout_s: float) -> servers_pb2.Server | None:
    """Follows the server with a spinner until ``done`` says so; returns it (None: gone)."""
    deadline = time.monotonic() + timeout_s
    with Follower(api, server_id) as follower, output.stderr_console().status("") as spinner:
        current = get_or_none(api, server_id)
        while not done(current):
            spinner.update(describe(current, server_id))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(current)
            try:
                current = follower.changes.get(timeout=min(POLL_S, remaining))
            except queue.Empty:
                current = get_or_none(api, server_id)
    return current

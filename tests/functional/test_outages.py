"""Outages only delay (a real stack on an etcd whose pid the test holds): with etcd frozen the API
answers UNAVAILABLE with a retry hint, never INTERNAL and never a hang, and a build accepted before
the freeze finishes after it; a build whose scheduler is frozen past its lease waits for it; a
second process with a live host name is refused, naming the host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import servers_pb2, services_pb2
from tests.support.etcd_server import EtcdServer, start_etcd
from tests.support.stack import ROOT, Stack, start_stack

S = servers_pb2.ServerStatus
CALL_TIMEOUT_S = 60.0  # far longer than an answer takes: a hung call fails the test as DEADLINE_EXCEEDED
LEASE_TTL_S = "3"


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, EtcdServer]]:
    etcd = start_etcd()
    try:
        stack = start_stack(tmp_path_factory.mktemp("outages"), "--driver", "fake", "--computes", "1",
                            "--etcd", etcd.client_url, "--lease-ttl", LEASE_TTL_S,
                            env={"STRATUS_FAKE_SPAWN_DELAY_S": "2"})  # fmt: skip
        try:
            yield stack, etcd
        finally:
            assert stack.stop() == 0, stack.log_tail()
    finally:
        etcd.stop()


def create(stack: Stack, name: str, request_id: str = "") -> servers_pb2.Server:
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny")
    req = servers_pb2.CreateServerRequest(server=spec, request_id=request_id)
    server: servers_pb2.Server = stack.servers.CreateServer(req, metadata=stack.md(), timeout=CALL_TIMEOUT_S)
    return server


def retry_delay_s(exc: grpc.RpcError) -> float | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    return None


def assert_unavailable(call: Callable[[], Any]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    exc: Any = caught.value
    assert exc.code() == grpc.StatusCode.UNAVAILABLE, (exc.code(), exc.details())
    assert exc.details() == "the state store is unreachable; retry"
    assert retry_delay_s(exc) == 1.0


def until_unavailable_passes(call: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """``call``, tried again while it answers UNAVAILABLE (as a client honouring RetryInfo does)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:  # type: ignore[attr-defined]
                raise
            time.sleep(retry_delay_s(exc) or 1.0)


def test_a_frozen_etcd_answers_unavailable_then_everything_resumes(outage_stack: tuple[Stack, EtcdServer]) -> None:
    stack, etcd = outage_stack
    before = create(stack, "before-freeze")  # its spawn takes 2 s: the build is under way during the freeze
    get = servers_pb2.GetServerRequest(id=before.id)
    os.kill(etcd.proc.pid, signal.SIGSTOP)
    try:
        assert_unavailable(lambda: stack.servers.GetServer(get, metadata=stack.md(), timeout=CALL_TIMEOUT_S))
        listing = servers_pb2.ListServersRequest()
        assert_unavailable(lambda: stack.servers.ListServers(listing, metadata=stack.md(), timeout=CALL_TIMEOUT_S))
        assert_unavailable(lambda: create(stack, "during-freeze", request_id="during-freeze-1"))
    finally:
        os.kill(etcd.proc.pid, signal.SIGCONT)
    done = stack.wait_for_server(before.id, {"ACTIVE", "ERROR"}, timeout_s=120)
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    # The create refused during the freeze, sent again with its request_id: exactly one server.
    during = until_unavailable_passes(lambda: create(stack, "during-freeze", request_id="during-freeze-1"))
    done = stack.wait_for_server(during.id, {"ACTIVE", "ERROR"}, timeout_s=120)
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    listed = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md()).servers
    assert [s.id for s in listed if s.name == "during-freeze"] == [during.id]
    for server in (before, during):
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
        stack.wait_gone(server.id)


def scheduler_state(stack: Stack) -> int:
    req = services_pb2.ListServicesRequest()
    services = stack.services.ListServices(req, metadata=stack.md()).services
    return int(next(s.state for s in services if s.binary == "scheduler"))


def test_a_build_waits_for_a_scheduler_frozen_past_its_lease(outage_stack: tuple[Stack, EtcdServer]) -> None:
    stack, _ = outage_stack
    scheduler = next(s for s in stack.reload()["services"] if s["binary"] == "scheduler")
    os.kill(scheduler["pid"], signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while scheduler_state(stack) != services_pb2.ServiceState.SERVICE_STATE_DOWN:  # its lease lapsed
            assert time.monotonic() < deadline, stack.log_tail()
            time.sleep(0.2)
        server = create(stack, "no-scheduler-yet")
        time.sleep(12)  # longer than the 10 s after which a build used to go to ERROR for good
        seen = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=stack.md())
        assert seen.status == S.SERVER_STATUS_BUILD, seen.fault
    finally:
        os.kill(scheduler["pid"], signal.SIGCONT)
    done = stack.wait_for_server(server.id, {"ACTIVE", "ERROR"}, timeout_s=120)
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)


def test_a_second_process_with_a_live_host_name_is_refused(
    outage_stack: tuple[Stack, EtcdServer], tmp_path: Path
) -> None:
    stack, etcd = outage_stack
    cmd = [sys.executable, "-m", "services.cli.main", "compute", "--etcd", etcd.client_url,
           "--host", "compute-1", "--port", "0", "--state-dir", str(tmp_path), "--lease-ttl", LEASE_TTL_S]  # fmt: skip
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "host name 'compute-1' is taken" in done.stderr and "pick another --host" in done.stderr
    hosts = [s for s in stack.reload()["services"] if s["host"] == "compute-1"]
    assert len(hosts) == 1 and hosts[0]["pid"] != 0  # the first one still serves

"""Faults: a build that fails on one host lands on another, and an api killed with -9 mid-build
leaves nothing stuck: the restarted api finishes what was accepted."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.v1 import servers_pb2, services_pb2
from tests.functional.conftest import list_hosts
from tests.support.stack import Stack, start_stack

S = servers_pb2.ServerStatus
UP = services_pb2.ServiceState.SERVICE_STATE_UP


@pytest.fixture
def slow_stack(tmp_path: Path) -> Iterator[Stack]:
    """One compute whose spawns take 2 s, so a build is still running when the api dies."""
    stack = start_stack(tmp_path / "slow", "--driver", "fake", "--computes", "1",
                        env={"STRATUS_FAKE_SPAWN_DELAY_S": "2"})  # fmt: skip
    yield stack
    assert stack.stop() == 0, stack.log_tail()


def test_a_build_that_fails_on_a_host_is_retried_elsewhere(stack: Stack, failing_compute: str) -> None:
    spec = servers_pb2.Server(name="rescheduled", flavor_id="m1.tiny", image_id="tiny")
    server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md("demo"))
    done = stack.wait_for_server(server.id, {"ACTIVE", "ERROR"}, who="demo")
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    assert done.host != failing_compute and done.host.startswith("compute-")
    failing = next(h for h in list_hosts(stack) if h.host == failing_compute)
    assert failing.ram_mb_used == 0 and failing.running_servers == 0  # the failed host's claim went back
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md("demo"))
    stack.wait_gone(server.id)


def test_an_api_killed_mid_build_is_restarted_and_finishes_it(slow_stack: Stack) -> None:
    stack = slow_stack
    spec = servers_pb2.Server(name="survivor", flavor_id="m1.tiny", image_id="tiny")
    server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    api = next(s for s in stack.info["services"] if s["binary"] == "api")
    os.kill(api["pid"], signal.SIGKILL)  # the build is still spawning on the compute
    deadline = time.monotonic() + 60
    while next(s for s in stack.reload()["services"] if s["binary"] == "api")["pid"] == api["pid"]:
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.1)
    done = stack.wait_for_server(server.id, {"ACTIVE", "ERROR"}, timeout_s=60)
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    hosts = list_hosts(stack)
    assert sum(h.running_servers for h in hosts) == 1 and sum(h.ram_mb_used for h in hosts) == done.resources.ram_mb
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)
    assert sum(h.ram_mb_used for h in list_hosts(stack)) == 0


def test_when_no_other_host_is_left_the_fault_leads_with_the_build_failure(tmp_path: Path) -> None:
    """One host, whose spawns fail: the user reads why the build failed, not only "no valid host"."""
    stack = start_stack(tmp_path / "lonely", "--driver", "fake", "--computes", "1",
                        env={"STRATUS_FAKE_FAIL_SPAWN": "true"})  # fmt: skip
    try:
        spec = servers_pb2.Server(name="doomed", flavor_id="m1.tiny", image_id="tiny")
        server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
        failed = stack.wait_for_server(server.id, {"ERROR"})
        assert failed.fault.message.startswith("build failed on 1 host(s) (compute-1); last error: spawn failed"), (
            failed.fault
        )
        assert "no other host to try: no valid host" in failed.fault.message
        assert failed.fault.reason == "BUILD_FAILED"
        assert failed.fault.code == "INTERNAL"
        assert failed.fault.metadata["hosts_tried"] == "compute-1"
    finally:
        assert stack.stop() == 0, stack.log_tail()

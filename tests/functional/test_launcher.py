"""The launcher: a killed child comes back on the same endpoint; two stacks side by side."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from stratus.v1 import flavors_pb2, hosts_pb2, services_pb2
from tests.support.stack import Stack, start_stack


def test_killed_compute_is_restarted_and_comes_back_up(stack: Stack) -> None:
    before = {s["host"]: s for s in stack.reload()["services"]}
    victim = before["compute-2"]
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = {s["host"]: s for s in stack.reload()["services"]}
        if now["compute-2"]["pid"] != victim["pid"]:
            reply = stack.services.ListServices(services_pb2.ListServicesRequest(binary="compute", host="compute-2"),
                                                metadata=stack.md())  # fmt: skip
            if reply.services and reply.services[0].state == services_pb2.ServiceState.SERVICE_STATE_UP:
                break
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.2)
    assert now["compute-2"]["endpoint"] == victim["endpoint"]
    host = stack.hosts.GetHost(hosts_pb2.GetHostRequest(host="compute-2"), metadata=stack.md())
    assert host.state == services_pb2.ServiceState.SERVICE_STATE_UP


def test_two_stacks_side_by_side(tmp_path: Path) -> None:
    a = start_stack(tmp_path / "a", "--driver", "fake")
    b = start_stack(tmp_path / "b", "--driver", "fake")
    try:
        assert a.api != b.api and a.info["etcd"] != b.info["etcd"]
        for s in (a, b):
            flavors = s.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=s.md()).flavors
            assert "m1.tiny" in {f.name for f in flavors}
    finally:
        assert a.stop() == 0
        assert b.stop() == 0
    assert not (tmp_path / "a" / "stack.json").exists()

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.v1 import hosts_pb2, services_pb2
from tests.support.stack import ROOT, Stack, start_stack

HOST_SIZE = "vcpus=8,ram_mb=8192,disk_gb=100"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the functional tests: 2 fake computes of a known size."""
    s = start_stack(Path(tmp_path_factory.mktemp("stack")), "--driver", "fake", "--computes", "2",
                    "--fake-host", HOST_SIZE)  # fmt: skip
    yield s
    assert s.stop() == 0, s.log_tail()


def list_hosts(stack: Stack) -> list[hosts_pb2.Host]:
    """Every host, page after page."""
    hosts: list[hosts_pb2.Host] = []
    request = hosts_pb2.ListHostsRequest()
    while True:
        reply = stack.hosts.ListHosts(request, metadata=stack.md())
        hosts.extend(reply.hosts)
        if not reply.next_page_token:
            return hosts
        request.page_token = reply.next_page_token


@pytest.fixture
def failing_compute(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A compute of its own name (no build failures counted against it yet, so the scheduler
    tries it first) joins the shared stack as the roomiest host, and fails every spawn."""
    host = f"failing-{uuid.uuid4().hex[:6]}"
    cmd = stack.process_argv("compute", host, tmp_path, "--fake-fail-spawn",
           "--fake-host", "vcpus=64,ram_mb=262144,disk_gb=4000")  # fmt: skip
    with (tmp_path / "failing.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        up = services_pb2.ServiceState.SERVICE_STATE_UP
        while not any(h.host == host and h.state == up for h in list_hosts(stack)):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "failing.log").read_text()
            time.sleep(0.1)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

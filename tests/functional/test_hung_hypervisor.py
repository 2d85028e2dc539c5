"""A hung hypervisor is noticed: a compute whose hypervisor stops answering turns degraded (ListHosts
and ListServices say why), the scheduler places nothing there (a create lands on another host, or
is refused, naming the reason, when no other host will do), and it clears once the hypervisor
answers again. The fake driver hangs while its ``fake_hang_file`` exists."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratus.v1 import hosts_pb2, placement_pb2, servers_pb2, services_pb2
from tests.functional.conftest import list_hosts
from tests.support.stack import ROOT, Stack

S = servers_pb2.ServerStatus
UP = services_pb2.ServiceState.SERVICE_STATE_UP
CALL_TIMEOUT_S = 0.5
WAIT_S = 30.0


@dataclass(frozen=True)
class HangingCompute:
    host: str
    zone: str
    hang_file: Path


def wait_until(what: str, check: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.1)


def host_of(stack: Stack, name: str) -> hosts_pb2.Host:
    return next(h for h in list_hosts(stack) if h.host == name)


def service_of(stack: Stack, name: str) -> services_pb2.Service:
    request = services_pb2.ListServicesRequest(binary="compute", host=name)
    reply: services_pb2.ListServicesResponse = stack.services.ListServices(request, metadata=stack.md())
    (service,) = reply.services
    return service


def explain(stack: Stack, zone: str) -> placement_pb2.PlacementExplanation:
    """Where the scheduler would put a server in ``zone`` now (its own view of the hosts)."""
    server = servers_pb2.Server(flavor_id="m1.tiny", image_id="tiny", availability_zone=zone)
    request = placement_pb2.ExplainPlacementRequest(server=server)
    reply: placement_pb2.PlacementExplanation = stack.placement.ExplainPlacement(request, metadata=stack.md())
    return reply


@pytest.fixture
def hanging_compute(stack: Stack, tmp_path: Path) -> Iterator[HangingCompute]:
    """A compute of its own name and zone joins the shared stack as the roomiest host (the
    scheduler would pick it first); its fake hypervisor hangs while ``hang_file`` exists."""
    suffix = uuid.uuid4().hex[:6]
    compute = HangingCompute(f"hanging-{suffix}", f"az-hang-{suffix}", tmp_path / "hang")
    cmd = stack.process_argv("compute", compute.host, tmp_path,
           "--availability-zone", compute.zone, "--fake-host", "vcpus=64,ram_mb=262144,disk_gb=4000",
           "--set", f"fake_hang_file={compute.hang_file}", "--set", f"hypervisor_call_timeout_s={CALL_TIMEOUT_S}",
           "--set", "hypervisor_check_interval_s=0.2")  # fmt: skip
    log = tmp_path / "hanging.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until("the compute came up", lambda: any(h.host == compute.host and h.state == UP
                                                      for h in list_hosts(stack)), log)  # fmt: skip
        yield compute
    finally:
        compute.hang_file.unlink(missing_ok=True)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.fixture
def create(stack: Stack) -> Iterator[Callable[[str, str], servers_pb2.Server]]:
    """``create(name, zone)`` makes a server, which the test's end deletes (failed or not)."""
    made: list[str] = []

    def make(name: str, zone: str = "") -> servers_pb2.Server:
        spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", availability_zone=zone)
        server: servers_pb2.Server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec),
                                                                metadata=stack.md())  # fmt: skip
        made.append(server.id)
        return server

    yield make
    for server_id in made:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md())
        stack.wait_gone(server_id)


def test_a_hung_hypervisor_is_noticed_avoided_and_cleared(
    stack: Stack, hanging_compute: HangingCompute, create: Callable[[str, str], servers_pb2.Server]
) -> None:
    hung, log = hanging_compute.host, hanging_compute.hang_file.parent / "hanging.log"
    assert host_of(stack, hung).degraded_reason == "" and service_of(stack, hung).degraded_reason == ""
    hanging_compute.hang_file.touch()

    wait_until("ListHosts says degraded", lambda: host_of(stack, hung).degraded_reason != "", log)
    reason = host_of(stack, hung).degraded_reason
    assert reason.startswith(f"fake hypervisor of {hung} did not answer '") and reason.endswith(
        f"within {CALL_TIMEOUT_S:g} s"
    ), reason
    assert host_of(stack, hung).state == UP  # alive, only not answering
    wait_until("ListServices says why", lambda: service_of(stack, hung).degraded_reason == reason, log)
    assert service_of(stack, hung).state == UP
    wait_until("the scheduler avoids it", lambda: explain(stack, hanging_compute.zone).selected_host == "", log)
    assert f"{hung}: hypervisor not answering ({reason})" in explain(stack, hanging_compute.zone).message

    elsewhere = stack.wait_for_server(create("avoids-the-hang", "").id, {"ACTIVE", "ERROR"})
    assert elsewhere.status == S.SERVER_STATUS_ACTIVE, elsewhere.fault
    assert elsewhere.host != hung and elsewhere.host.startswith("compute-")

    refused = stack.wait_for_server(create("only-the-hung-host", hanging_compute.zone).id, {"ACTIVE", "ERROR"})
    assert refused.status == S.SERVER_STATUS_ERROR and refused.host == ""
    assert f"{hung}: hypervisor not answering ({reason})" in refused.fault.message, refused.fault

    hanging_compute.hang_file.unlink()
    wait_until("ListHosts clears", lambda: host_of(stack, hung).degraded_reason == "", log)
    wait_until("ListServices clears", lambda: service_of(stack, hung).degraded_reason == "", log)
    wait_until("the scheduler places there again", lambda: explain(stack, hanging_compute.zone).selected_host == hung,
               log)  # fmt: skip

    placed = stack.wait_for_server(create("back-on-the-host", hanging_compute.zone).id, {"ACTIVE", "ERROR"})
    assert placed.status == S.SERVER_STATUS_ACTIVE and placed.host == hung, placed.fault

"""etcd's own limits, end to end: a stack whose etcd has a tiny quota (``stratus up
--etcd-quota-bytes``) is filled until NOSPACE. A public write then answers UNAVAILABLE saying the
state store is out of space, ListServices and ``stratus service list`` show the alarm, a build
under way waits instead of failing, and once space is freed the launcher's upkeep (compact,
defragment, disarm) gets everything going again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import flavors_pb2, servers_pb2, services_pb2
from tests.support.etcd_fill import FILLER, fill_until_full
from tests.support.stack import ROOT, Stack, start_stack

S = servers_pb2.ServerStatus
QUOTA = "16MiB"
FILL_PREFIX = "/etcd-limits-filler/"  # beside the stack's keys, not among them
CALL_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("etcd-limits"), "--driver", "fake", "--etcd-quota-bytes", QUOTA,
                        env={"STRATUS_FAKE_SPAWN_DELAY_S": "2"})  # fmt: skip
    try:
        yield stack
    finally:
        assert stack.stop() == 0, stack.log_tail()


def on_filler(stack: Stack, free: bool) -> None:
    """Fills the stack's etcd until NOSPACE, or deletes what filled it."""

    async def run() -> None:
        store = stack.etcd_store(prefix=FILL_PREFIX)
        await store.connect()
        try:
            await (store.delete_prefix(FILLER) if free else fill_until_full(store))
        finally:
            await store.close()

    asyncio.run(run())


def create_flavor(stack: Stack, name: str) -> flavors_pb2.Flavor:
    spec = flavors_pb2.Flavor(name=name, vcpus=1, ram_mb=64, disk_gb=1)
    reply: flavors_pb2.Flavor = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=spec),
                                                           metadata=stack.md(), timeout=CALL_TIMEOUT_S)  # fmt: skip
    return reply


def reason_of(exc: Any) -> str:
    status = rpc_status.from_call(exc)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def list_services(stack: Stack) -> services_pb2.ListServicesResponse:
    reply: services_pb2.ListServicesResponse = stack.services.ListServices(services_pb2.ListServicesRequest(),
                                                                           metadata=stack.md())  # fmt: skip
    return reply


def create_when_writable(stack: Stack, name: str, timeout_s: float = 90.0) -> flavors_pb2.Flavor:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return create_flavor(stack, name)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:  # type: ignore[attr-defined]
                raise AssertionError(f"still refused: {exc}\n{stack.log_tail()}") from exc
            time.sleep(1.0)


def test_nospace_is_unavailable_shown_in_service_list_and_cleared_by_the_launcher(small_stack: Stack) -> None:
    stack = small_stack
    spec = servers_pb2.Server(name="through-nospace", flavor_id="m1.tiny", image_id="tiny")
    building = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    on_filler(stack, free=False)  # its spawn takes 2 s: the build is under way when etcd fills up

    with pytest.raises(grpc.RpcError) as caught:
        create_flavor(stack, "refused")
    exc: Any = caught.value
    assert exc.code() == grpc.StatusCode.UNAVAILABLE, (exc.code(), exc.details())
    assert "out of space" in exc.details() and "NOSPACE" in exc.details()
    assert reason_of(exc) == "STATE_STORE_FULL"

    reply = list_services(stack)
    assert {s.binary for s in reply.services} >= {"api", "scheduler", "compute", "servicegroup"}
    [alarm] = reply.store_alarms
    assert alarm.alarm == "NOSPACE" and alarm.endpoint == stack.info["etcd"][0]
    assert "is out of space" in alarm.message

    for fmt in ("table", "json"):  # the warning goes to stderr: the json on stdout stays parseable
        argv = [sys.executable, "-m", "services.cli.main", "service", "list", "--state-dir", str(stack.state_dir),
                "-f", fmt]  # fmt: skip
        cli = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "COLUMNS": "200"})  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert "is out of space" in cli.stderr and "NOSPACE" in cli.stderr
    assert "compute-1" in {s["host"] for s in json.loads(cli.stdout)}

    time.sleep(3)  # the build's outcome meets the full etcd: it waits, never ERROR
    seen = stack.servers.GetServer(servers_pb2.GetServerRequest(id=building.id), metadata=stack.md())
    assert seen.status == S.SERVER_STATUS_BUILD, seen.fault

    on_filler(stack, free=True)  # an operator frees space; the launcher's upkeep does the rest
    create_when_writable(stack, "after-nospace")
    assert list(list_services(stack).store_alarms) == []
    done = stack.wait_for_server(building.id, {"ACTIVE", "ERROR"}, timeout_s=120)
    assert done.status == S.SERVER_STATUS_ACTIVE, done.fault
    assert "NOSPACE disarmed" in (Path(stack.state_dir) / "launcher.log").read_text()

"""No tenant can break the cloud: two projects fill their default quotas with the largest servers
the API accepts; then a third project lists, gets and creates, an admin pages through every
project, a SIGKILLed api serves again and a SIGKILLed scheduler comes back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from services.core.message_limits import CREATE_SERVER_MAX_BYTES
from stratus.v1 import flavors_pb2, servers_pb2, tokens_pb2, tokens_pb2_grpc
from tests.support.stack import Stack, start_stack

DEFAULT_INSTANCES = 10
GRPC_DEFAULT_RECEIVE = 4 << 20  # what grpcurl and most clients accept
WAIT_S = 60.0  # a guard against a hang, never a timing assertion


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("tenants")), "--driver", "fake", "--computes", "2",
                    "--fake-host", "vcpus=64,ram_mb=131072,disk_gb=2000", env={"STRATUS_QUOTA": "{}"})  # fmt: skip
    yield s
    assert s.stop() == 0, s.log_tail()


def member_of(stack: Stack, project: str) -> list[tuple[str, str]]:
    req = tokens_pb2.CreateTokenRequest(project_id=project, user_id=f"{project}-user", roles=["member"])
    assert stack.channel is not None
    token = tokens_pb2_grpc.TokensStub(stack.channel).CreateToken(req, metadata=stack.md()).token
    return [("authorization", f"Bearer {token}")]


def largest(name: str) -> servers_pb2.CreateServerRequest:
    """A create as large as the API accepts: 64 KiB of user data, 128 metadata entries and 128
    hints with 255-character keys, values as long as the whole-request bound leaves room for."""
    value = 1024
    while True:
        server = servers_pb2.Server(
            name=name, flavor_id="m1.tiny", image_id="tiny", user_data=b"u" * 65536,
            metadata={f"m{i:03}".ljust(255, "k"): "v" * value for i in range(128)},
            scheduler_hints={f"h{i:03}".ljust(255, "k"): "v" * value for i in range(128)},
        )  # fmt: skip
        req = servers_pb2.CreateServerRequest(server=server)
        if req.ByteSize() <= CREATE_SERVER_MAX_BYTES:
            return req
        value -= 8


def fill(stack: Stack, md: list[tuple[str, str]], project: str) -> list[str]:
    ids = [stack.servers.CreateServer(largest(f"{project}-{i}"), metadata=md).id for i in range(DEFAULT_INSTANCES)]
    with pytest.raises(grpc.RpcError) as over:
        stack.servers.CreateServer(largest(f"{project}-over"), metadata=md)
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in (over.value.details() or "").lower()
    return ids


def serving(stack: Stack) -> bool:
    try:
        stack.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=stack.md(), timeout=2)
        return True
    except grpc.RpcError:
        return False


def kill_and_wait(stack: Stack, host: str, back: Callable[[], bool]) -> float:
    """SIGKILLs the process serving as ``host`` and returns how long until ``back()`` is true."""
    victim = next(s for s in stack.reload()["services"] if s["host"] == host)
    os.kill(victim["pid"], signal.SIGKILL)
    killed = time.monotonic()
    while True:
        now = next(s for s in stack.reload()["services"] if s["host"] == host)
        if now["pid"] != victim["pid"] and back():
            return time.monotonic() - killed
        assert time.monotonic() - killed < WAIT_S, stack.log_tail()
        time.sleep(0.05)


def test_two_full_projects_leave_the_cloud_to_everyone_else(full: Stack) -> None:
    one, two, three = (member_of(full, p) for p in ("tenant-1", "tenant-2", "tenant-3"))
    filled = fill(full, one, "tenant-1") + fill(full, two, "tenant-2")
    for server_id in filled[:: DEFAULT_INSTANCES - 1]:
        full.wait_for_server(server_id, {"ACTIVE"})
    assert full.servers.ListServers(servers_pb2.ListServersRequest(), metadata=three).servers == []
    mine = full.servers.CreateServer(servers_pb2.CreateServerRequest(server=servers_pb2.Server(
        name="third", flavor_id="m1.tiny", image_id="tiny")), metadata=three)  # fmt: skip
    assert full.servers.GetServer(servers_pb2.GetServerRequest(id=mine.id), metadata=three).name == "third"
    big = full.servers.GetServer(servers_pb2.GetServerRequest(id=filled[0]), metadata=one)
    assert len(big.metadata) == 128 and len(big.scheduler_hints) == 128 and len(big.user_data) == 65536

    seen, token = [], ""
    while True:  # the admin pages through every project, each page within what any client accepts
        req = servers_pb2.ListServersRequest(all_projects=True, page_size=1000, page_token=token)
        page = full.servers.ListServers(req, metadata=full.md())
        assert page.ByteSize() < GRPC_DEFAULT_RECEIVE
        seen += [s.id for s in page.servers]
        token = page.next_page_token
        if not token:
            break
    assert set(filled) | {mine.id} <= set(seen)

    took = kill_and_wait(full, "api-1", lambda: serving(full))
    print(f"api serving again {took:.1f} s after SIGKILL")
    assert len(full.servers.ListServers(servers_pb2.ListServersRequest(), metadata=one).servers) == DEFAULT_INSTANCES
    took = kill_and_wait(full, "scheduler-1", lambda: True)
    print(f"scheduler restarted {took:.1f} s after SIGKILL")
    full.wait_for_server(mine.id, {"ACTIVE"}, who="admin")
    again = full.servers.CreateServer(servers_pb2.CreateServerRequest(server=servers_pb2.Server(
        name="after", flavor_id="m1.tiny", image_id="tiny")), metadata=three)  # fmt: skip
    full.wait_for_server(again.id, {"ACTIVE"}, timeout_s=WAIT_S)

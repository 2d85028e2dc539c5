"""Records never lie about a guest (issue 18, item 6), through the public API of a fake stack: the
fake hypervisor keeps its domains in a file, so the test takes a domain away behind the compute's
back (``forget``: an operator's ``virsh destroy; virsh undefine``, or the instance directory
removed too). The server turns SHUTOFF with a fault that says so, keeping its claim; a start
brings its domain back from the record; with the disk gone too it turns ERROR, and a delete frees
its claim."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.compute.drivers.fake.domains import forget, read_domains
from services.core import keys
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2
from tests.support.stack import Stack, start_stack

P = servers_pb2.PowerState
RECONCILE_INTERVAL_S = 0.3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = Path(tmp_path_factory.mktemp("vanished")) / "state"
    env = {"STRATUS_FAKE_DOMAINS_DIR": str(state_dir / "fake-domains"),
           "STRATUS_RECONCILE_INTERVAL_S": str(RECONCILE_INTERVAL_S)}  # fmt: skip
    s = start_stack(state_dir, "--driver", "fake", env=env)
    yield s
    assert s.stop() == 0, s.log_tail()


def claims_on(stack: Stack, host: str) -> list[str]:
    async def read() -> list[str]:
        store = stack.etcd_store()
        await store.connect()
        try:
            kv = await store.get(keys.host_usage(host))
            return list(state_pb2.HostUsage.FromString(kv.value).claims) if kv else []
        finally:
            await store.close()

    return asyncio.run(read())


def domains_file(stack: Stack, host: str) -> Path:
    return stack.state_dir / "fake-domains" / f"{host}.json"


def settled(stack: Stack, server_id: str, status: str) -> servers_pb2.Server:
    server: servers_pb2.Server = stack.wait_for_server(server_id, {status}, timeout_s=30)
    return server


def test_a_domain_lost_behind_the_computes_back_shows_and_comes_back(stack: Stack) -> None:
    spec = servers_pb2.Server(name="vanishing", flavor_id="m1.tiny", image_id="tiny")
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md("demo"))
    server = settled(stack, created.id, "ACTIVE")
    path = domains_file(stack, server.host)
    assert server.id in read_domains(path)

    forget(path, server.id)  # virsh destroy; virsh undefine
    started = time.monotonic()
    server = settled(stack, server.id, "SHUTOFF")
    assert time.monotonic() - started < 10 * RECONCILE_INTERVAL_S + 5
    assert server.power_state == P.POWER_STATE_NOSTATE
    assert (server.fault.code, server.fault.reason) == ("FAILED_PRECONDITION", "DOMAIN_VANISHED")
    assert server.fault.message == (f"the domain of this server vanished from {server.host}; "
                                    "its disk remains: start or hard-reboot it to recreate it")  # fmt: skip
    assert server.id in claims_on(stack, server.host)  # it still lives there

    stack.servers.StartServer(servers_pb2.StartServerRequest(id=server.id), metadata=stack.md("demo"))
    server = settled(stack, server.id, "ACTIVE")
    assert (server.power_state, server.HasField("fault")) == (P.POWER_STATE_RUNNING, False)
    assert read_domains(path)[server.id]["power_state"] == P.POWER_STATE_RUNNING
    assert read_domains(path)[server.id]["spec"]["name"] == "vanishing"

    forget(path, server.id)  # again; this time a hard reboot brings it back from SHUTOFF, as Nova's
    settled(stack, server.id, "SHUTOFF")
    hard = servers_pb2.RebootServerRequest(id=server.id, type=servers_pb2.RebootType.REBOOT_TYPE_HARD)
    stack.servers.RebootServer(hard, metadata=stack.md("demo"))
    server = settled(stack, server.id, "ACTIVE")
    assert read_domains(path)[server.id]["power_state"] == P.POWER_STATE_RUNNING

    forget(path, server.id, disk_too=True)  # the instance directory removed as well
    server = settled(stack, server.id, "ERROR")
    assert (server.fault.code, server.fault.reason) == ("FAILED_PRECONDITION", "DISK_VANISHED")
    lost = f"the domain of this server vanished from {server.host} and its disk is gone: delete it"
    assert server.fault.message == lost
    assert server.id in claims_on(stack, server.host)

    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md("demo"))
    stack.wait_gone(server.id)
    assert server.id not in claims_on(stack, server.host)

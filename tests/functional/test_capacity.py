"""Many concurrent creates against fake hosts of a known size, twice what they can hold, with two
schedulers: exactly the capacity becomes ACTIVE, no host is over-committed, and every refused
server says which resource ran out."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stratus.v1 import flavors_pb2, hosts_pb2, servers_pb2
from tests.support.stack import Stack, start_stack

HOSTS = 3
HOST_RAM_MB, HOST_DISK_GB, HOST_VCPUS = 4096, 40, 4
FLAVOR_VCPUS, FLAVOR_RAM_MB, FLAVOR_DISK_GB = 1, 1024, 10  # RAM and disk allow 4 a host; vCPUs 16 (ratio 4.0)
CAPACITY = HOSTS * 4


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    size = f"vcpus={HOST_VCPUS},ram_mb={HOST_RAM_MB},disk_gb={HOST_DISK_GB}"
    stack = start_stack(Path(tmp_path_factory.mktemp("crowded")), "--driver", "fake", "--computes", str(HOSTS),
                        "--schedulers", "2", "--fake-host", size)  # fmt: skip
    yield stack
    assert stack.stop() == 0, stack.log_tail()


def test_exactly_the_capacity_becomes_active(crowded: Stack) -> None:
    stack = crowded
    flavor = stack.flavors.CreateFlavor(
        flavors_pb2.CreateFlavorRequest(flavor=flavors_pb2.Flavor(
            name=f"crowd-{uuid.uuid4().hex[:6]}", vcpus=FLAVOR_VCPUS, ram_mb=FLAVOR_RAM_MB, disk_gb=FLAVOR_DISK_GB
        )),
        metadata=stack.md(),
    )

    def create(i: int) -> str:
        spec = servers_pb2.Server(name=f"crowd-{i}", flavor_id=flavor.id, image_id="tiny")
        server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md("demo"))
        return str(server.id)

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(create, range(2 * CAPACITY)))
    final = [stack.wait_for_server(i, {"ACTIVE", "ERROR"}, who="demo", timeout_s=120) for i in ids]
    statuses = Counter(servers_pb2.ServerStatus.Name(s.status) for s in final)
    assert statuses == {"SERVER_STATUS_ACTIVE": CAPACITY, "SERVER_STATUS_ERROR": CAPACITY}, statuses

    hosts = stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts
    for host in hosts:
        assert host.ram_mb_used <= host.ram_mb and host.disk_gb_used <= host.disk_gb, host
    assert sum(h.running_servers for h in hosts) == CAPACITY
    placed = Counter(s.host for s in final if s.status == servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE)
    assert all(n <= 4 for n in placed.values()), placed

    for refused in (s for s in final if s.status == servers_pb2.ServerStatus.SERVER_STATUS_ERROR):
        assert refused.fault.reason == "NO_VALID_HOST", refused.fault
        assert refused.fault.metadata.get("resource") in {"ram_mb", "disk_gb"}, refused.fault
        assert "RamFilter" in refused.fault.message or "DiskFilter" in refused.fault.message
        assert "1024 MB RAM needed" in refused.fault.message or "10 GB" in refused.fault.message

    for server_id in ids:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md("demo"))
    for server_id in ids:
        stack.wait_gone(server_id)
    hosts = stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts
    assert sum(h.ram_mb_used for h in hosts) == 0

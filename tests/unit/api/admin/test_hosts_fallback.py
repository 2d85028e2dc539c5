"""ListServices and ListHosts while no servicegroup answers (restarting): the api composes the
members from the service records in etcd by the servicegroup's own rules (real etcd)."""

from __future__ import annotations

from typing import Any, cast

from services.api.admin.hosts import AdminManager
from services.core import keys
from services.core.errors import Unavailable
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import services_pb2

UP = services_pb2.SERVICE_STATE_UP
DOWN = services_pb2.SERVICE_STATE_DOWN


class NoServicegroup:
    def servicegroup(self) -> Any:
        raise Unavailable("no servicegroup service is running", reason="SERVICEGROUP_DOWN")


async def test_hosts_and_services_are_read_from_etcd_while_the_servicegroup_is_down(store: Store) -> None:
    caps = state_pb2.HostCapabilities(host="h1", vcpus=8, ram_mb=4096, disk_gb=100)
    await store.put(keys.host_capabilities("h1"), caps.SerializeToString())
    await store.put(keys.service("compute", "h1"), state_pb2.ServiceRecord(host="h1").SerializeToString())
    await store.put(keys.service_seen("compute", "h2"), state_pb2.ServiceSeen().SerializeToString())  # gone
    admin = AdminManager(store, cast(Any, NoServicegroup()))
    services, last = await admin.list_services(binary="compute")
    assert [(s.host, s.state) for s in services] == [("h1", UP), ("h2", DOWN)] and last == ""
    (h1, h2) = (await admin.list_hosts()).hosts
    assert (h1.host, h1.state, h1.vcpus) == ("h1", UP, 8)
    assert (h2.host, h2.state) == ("h2", DOWN)

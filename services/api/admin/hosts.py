"""Services and Hosts (admin): membership from the servicegroup (from the records in etcd while it
is restarting), host sizes and claims from etcd."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from services.api.admin.store_alarms import store_alarms
from services.api.peers import Peers, call
from services.api.zones import host_zone, host_zones, read_zone_map, zoned_aggregates
from services.core import claims, instances, keys, service_members
from services.core.errors import STATE_STORE_UNAVAILABLE, InvalidArgument, NotFound, Unavailable
from services.core.etcd import Store
from stratus.servicegroup.v1 import servicegroup_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import hosts_pb2, services_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")
State = services_pb2.ServiceState
Status = services_pb2.ServiceStatus


class AdminManager:
    def __init__(self, store: Store, peers: Peers) -> None:
        self._store = store
        self._peers = peers

    async def list_services(self, binary: str = "", host: str = "") -> list[services_pb2.Service]:
        """The servicegroup's view; while no servicegroup answers (restarting), the same rules
        over the records in etcd, so ListServices and ListHosts keep answering."""
        request = servicegroup_pb2.ListMembersRequest(binary=binary, host=host)
        try:
            reply = await call(self._peers.servicegroup().ListMembers, request)
        except Unavailable as err:
            if err.reason == STATE_STORE_UNAVAILABLE:
                raise
            log.warning("no servicegroup answers (%s); reading the service records directly", err.message)
            return await self._members_from_store(binary, host)
        return list(reply.members)

    async def store_alarms(self) -> list[services_pb2.StoreAlarm]:
        """etcd's active alarms (NOSPACE: it refuses writes), for ListServices."""
        return await store_alarms(self._store)

    async def _members_from_store(self, binary: str, host: str) -> list[services_pb2.Service]:
        live = await self._by_service(keys.SERVICES, binary, host, state_pb2.ServiceRecord.FromString)
        admin = await self._by_service(keys.SERVICES_ADMIN, binary, host, state_pb2.ServiceAdmin.FromString)
        seen = await self._by_service(keys.SERVICES_SEEN, binary, host, state_pb2.ServiceSeen.FromString)
        now = instances.now()
        return [
            service_members.compose(
                b, h, record=live.get((b, h)), admin=admin.get((b, h)), seen=seen.get((b, h)), now=now
            )
            for b, h in sorted({*live, *seen})
            if (not binary or b == binary) and (not host or h == host)
        ]

    async def _by_service(
        self, root: str, binary: str, host: str, decode: Callable[[bytes], T]
    ) -> dict[tuple[str, str], T]:
        """The records under ``root`` (one of the services_* prefixes) of ``binary`` and ``host``
        when given: one key, one binary's keys, or all of them, page by page."""
        if binary and host:
            kv = await self._store.get(f"{root}{binary}/{host}")
            return {(binary, host): decode(kv.value)} if kv else {}
        prefix = f"{root}{binary}/" if binary else root
        return {
            keys.split_service(kv.key): decode(kv.value) async for page in self._store.scan(prefix) for kv in page.kvs
        }

    async def update_service(self, req: services_pb2.UpdateServiceRequest) -> services_pb2.Service:
        missing = [(f, "is required") for f in ("binary", "host") if not getattr(req, f)]
        if missing:
            raise InvalidArgument(missing)
        update = servicegroup_pb2.UpdateMemberRequest(binary=req.binary, host=req.host, status=req.status)
        if req.HasField("disabled_reason"):
            update.disabled_reason = req.disabled_reason
        if req.HasField("forced_down"):
            update.forced_down = req.forced_down
        return await call(self._peers.servicegroup().UpdateMember, update)

    async def list_hosts(self) -> list[hosts_pb2.Host]:
        """Every host, its keys read page by page; the zones from the aggregates that set one."""
        caps: dict[str, state_pb2.HostCapabilities] = {}
        usage: dict[str, state_pb2.HostUsage] = {}
        async for page in self._store.scan(keys.HOSTS):
            for kv in page.kvs:
                host, kind = keys.split_host(kv.key)
                if kind == keys.CAPABILITIES:
                    caps[host] = state_pb2.HostCapabilities.FromString(kv.value)
                elif kind == keys.USAGE:
                    usage[host] = state_pb2.HostUsage.FromString(kv.value)
        members = {m.host: m for m in await self.list_services(binary="compute")}
        zones = host_zones(await zoned_aggregates(self._store, await read_zone_map(self._store)))
        names = sorted(set(caps) | set(usage) | set(members))
        return [self._host(n, caps.get(n), usage.get(n), members.get(n), zones.get(n, "")) for n in names]

    async def get_host(self, name: str) -> hosts_pb2.Host:
        """One host from its own keys, its membership and its aggregates (their index): no other host's."""
        if not name:
            raise InvalidArgument([("host", "is required")])
        caps = await self._store.get(keys.host_capabilities(name))
        usage = await self._store.get(keys.host_usage(name))
        member = next((m for m in await self.list_services(binary="compute", host=name) if m.host == name), None)
        if caps is None and usage is None and member is None:
            raise NotFound("host", name)
        zone = await host_zone(self._store, name, await read_zone_map(self._store))
        return self._host(
            name, state_pb2.HostCapabilities.FromString(caps.value) if caps else None,
            state_pb2.HostUsage.FromString(usage.value) if usage else None, member, zone,
        )  # fmt: skip

    @staticmethod
    def _host(
        name: str,
        caps: state_pb2.HostCapabilities | None,
        usage: state_pb2.HostUsage | None,
        member: services_pb2.Service | None,
        aggregate_zone: str = "",
    ) -> hosts_pb2.Host:
        """``aggregate_zone``: the zone an aggregate gives the host, which wins over the one it reports."""
        used = claims.totals(usage or state_pb2.HostUsage())
        caps = caps or state_pb2.HostCapabilities()
        up = member is not None and member.state == State.SERVICE_STATE_UP and bool(caps.host)
        return hosts_pb2.Host(
            host=name, state=State.SERVICE_STATE_UP if up else State.SERVICE_STATE_DOWN,
            status=member.status if member else Status.SERVICE_STATUS_ENABLED,
            vcpus=caps.vcpus, vcpus_used=used.vcpus, ram_mb=caps.ram_mb, ram_mb_used=used.ram_mb,
            disk_gb=caps.disk_gb, disk_gb_used=used.disk_gb, running_servers=used.instances,
            hypervisor_type=caps.hypervisor_type, hypervisor_version=caps.hypervisor_version,
            cpu_model=caps.cpu_model, availability_zone=aggregate_zone or caps.availability_zone,
            degraded_reason=caps.degraded_reason,
        )  # fmt: skip

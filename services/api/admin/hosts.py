"""Services and Hosts (admin): membership from the servicegroup (from the records in etcd while it
is restarting: members_store.py), host sizes and claims from etcd. Both list a page at a time, at
most ``page_size`` and about ``PAGE_BYTES``; a page of hosts reads only its own hosts' records
(host_names.py)."""

from __future__ import annotations

import logging

from services.api import paging
from services.api.admin import host_names
from services.api.admin.members_store import members_from_store
from services.api.admin.store_alarms import store_alarms
from services.api.peers import Peers, call
from services.api.validation import page_size
from services.api.zones import host_zone, host_zones, read_zone_map, zoned_aggregates
from services.core import claims, keys
from services.core.errors import STATE_STORE_UNAVAILABLE, InvalidArgument, NotFound, Unavailable
from services.core.etcd import Store
from services.core.message_limits import fill_page
from stratus.servicegroup.v1 import servicegroup_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import hosts_pb2, services_pb2

log = logging.getLogger(__name__)
COMPUTE = "compute"
MEMBERS_MOST = 1000  # members one call asks the servicegroup for (a page of ListServices or ListHosts)
State = services_pb2.ServiceState
Status = services_pb2.ServiceStatus


class AdminManager:
    def __init__(self, store: Store, peers: Peers) -> None:
        self._store = store
        self._peers = peers

    async def services_page(self, binary: str, host: str, size: int, token: str) -> services_pb2.ListServicesResponse:
        """ListServices: a page of the services (of ``binary`` and ``host`` when given) by binary then
        host, at most ``size`` (``page_size``) and about ``PAGE_BYTES``, with etcd's alarms."""
        after = paging.decode(token, keys.SERVICES).removeprefix(keys.SERVICES)
        services, last = await self.list_services(binary, host, after, page_size(size))
        return services_pb2.ListServicesResponse(
            services=services, store_alarms=await store_alarms(self._store),
            next_page_token=paging.next_token(keys.SERVICES + last if last else ""),
        )  # fmt: skip

    async def list_services(
        self, binary: str = "", host: str = "", after: str = "", limit: int = MEMBERS_MOST
    ) -> tuple[list[services_pb2.Service], str]:
        """A page of the servicegroup's view: the members after ``after`` (``<binary>/<host>``), at
        most ``limit`` and about ``PAGE_BYTES``, and the name of the last one when more follow; while
        no servicegroup answers (restarting), the same rules over the records in etcd, so
        ListServices and ListHosts keep answering."""
        request = servicegroup_pb2.ListMembersRequest(binary=binary, host=host, page_size=limit, page_token=after)
        try:
            reply = await call(self._peers.servicegroup().ListMembers, request)
        except Unavailable as err:
            if err.reason == STATE_STORE_UNAVAILABLE:
                raise
            log.warning("no servicegroup answers (%s); reading the service records directly", err.message)
            return await members_from_store(self._store, binary, host, after, limit)
        return list(reply.members), reply.next_page_token

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

    async def list_hosts(self, size: int = 0, token: str = "") -> hosts_pb2.ListHostsResponse:
        """A page of the hosts in name order, at most ``size`` (``page_size``) and about
        ``PAGE_BYTES``: those with records (``hosts/``) and the compute services (a compute seen
        but without records is DOWN), each read for its page only (host_names.py)."""
        limit = page_size(size)
        after = paging.decode(token, keys.HOSTS).removeprefix(keys.HOSTS)
        recorded = await host_names.record_hosts(self._store, after, limit)
        members, last_member = await self.list_services(COMPUTE, "", f"{COMPUTE}/{after}" if after else "", limit)
        names, more = host_names.merged_page([recorded, ([m.host for m in members], bool(last_member))], limit)
        hosts = await self._hosts(names, {m.host: m for m in members})
        page, last = fill_page(((keys.HOSTS + h.host, h) for h in hosts), limit)
        if not last and more and page:
            last = keys.HOSTS + page[-1].host
        return hosts_pb2.ListHostsResponse(hosts=page, next_page_token=paging.next_token(last))

    async def _hosts(self, names: list[str], members: dict[str, services_pb2.Service]) -> list[hosts_pb2.Host]:
        """These hosts from their own keys and ``members``; the zones from the aggregates that set one."""
        kvs = await self._store.get_many([k for n in names for k in (keys.host_capabilities(n), keys.host_usage(n))])
        zones = host_zones(await zoned_aggregates(self._store, await read_zone_map(self._store)))
        hosts = []
        for name, caps, usage in zip(names, kvs[0::2], kvs[1::2], strict=True):
            hosts.append(self._host(
                name, state_pb2.HostCapabilities.FromString(caps.value) if caps else None,
                state_pb2.HostUsage.FromString(usage.value) if usage else None, members.get(name), zones.get(name, ""),
            ))  # fmt: skip
        return hosts

    async def get_host(self, name: str) -> hosts_pb2.Host:
        """One host from its own keys, its membership and its aggregates (their index): no other host's."""
        if not name:
            raise InvalidArgument([("host", "is required")])
        caps = await self._store.get(keys.host_capabilities(name))
        usage = await self._store.get(keys.host_usage(name))
        found, _ = await self.list_services(COMPUTE, name, limit=1)
        member = next((m for m in found if m.host == name), None)
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

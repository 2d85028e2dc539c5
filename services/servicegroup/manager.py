"""Membership: who is up, disabled or forced down, from four watched prefixes.

``services/`` holds each live process's lease-bound record; ``services_admin/`` the operator's
choice; ``services_seen/`` (owned here) when each service was last seen alive, so a DOWN service
keeps a last_seen across restarts of anything. The servicegroup writes a seen record when a
service appears and again when its lease key vanishes. ``hosts/`` gives each compute's
``degraded_reason`` (its capabilities: the hypervisor does not answer).
"""

from __future__ import annotations

import asyncio
import logging

from services.core import instances, keys, retry
from services.core import service_members as members
from services.core.errors import InvalidArgument, NotFound
from services.core.etcd import Store
from services.core.message_limits import fill_page
from services.core.watchcache import Entry, PrefixCache
from services.servicegroup.events import MemberEvents, Subscription
from services.servicegroup.seen import SeenWriter
from stratus.servicegroup.v1 import servicegroup_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import services_pb2

log = logging.getLogger(__name__)
MEMBERS_PAGE_MOST = 1000  # members a page of ListMembers holds at most (and about PAGE_BYTES)
COMPUTE = "compute"


class ServiceGroupManager:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._services: PrefixCache[state_pb2.ServiceRecord] = PrefixCache(
            store, keys.SERVICES, state_pb2.ServiceRecord.FromString
        )
        self._admin: PrefixCache[state_pb2.ServiceAdmin] = PrefixCache(
            store, keys.SERVICES_ADMIN, state_pb2.ServiceAdmin.FromString
        )
        self._seen: PrefixCache[state_pb2.ServiceSeen] = PrefixCache(
            store, keys.SERVICES_SEEN, state_pb2.ServiceSeen.FromString
        )
        self.seen_writer = SeenWriter(store)
        self._events = MemberEvents()
        # compute host's capabilities -> why its hypervisor does not answer ("" while it does)
        self._degraded: PrefixCache[str] = PrefixCache(store, keys.HOSTS, _degraded_reason, keep=_is_capabilities)
        self._states: dict[tuple[str, str], services_pb2.ServiceState.ValueType] = {}
        self._services.subscribe(self._on_service)
        self._admin.subscribe(self._on_admin)
        self._degraded.subscribe(self._on_host)

    async def start(self) -> None:
        self.seen_writer.start()
        await self._seen.start()
        await self._admin.start()
        await self._degraded.start()
        await self._services.start()

    async def stop(self) -> None:
        await asyncio.gather(self._services.stop(), self._admin.stop(), self._seen.stop(), self._degraded.stop())
        await self.seen_writer.stop()

    def lease_records(self) -> dict[str, bytes]:
        return {}

    # ---- queries ----------------------------------------------------------------------------
    def list_members(self, binary: str = "", host: str = "") -> list[services_pb2.Service]:
        """Every service ever seen (``binary``/``host`` narrow it), in ``<binary>/<host>`` order."""
        return [self._member(b, h) for b, h in self._names(binary, host)]

    def members_page(
        self, binary: str = "", host: str = "", after: str = "", limit: int = MEMBERS_PAGE_MOST
    ) -> tuple[list[services_pb2.Service], str]:
        """``list_members`` a page at a time: those after ``after`` (``<binary>/<host>``), at most
        ``limit`` and about ``PAGE_BYTES``; and the name of the last one when more follow ("" at
        the end)."""
        later = ((f"{b}/{h}", b, h) for b, h in self._names(binary, host) if f"{b}/{h}" > after)
        return fill_page(((name, self._member(b, h)) for name, b, h in later), limit)

    def _names(self, binary: str, host: str) -> list[tuple[str, str]]:
        """The services (binary, host), of ``binary`` and ``host`` when given, in the order etcd sorts
        their keys (``<binary>/<host>``), so the api's own reading of them, while no servicegroup
        answers, pages the same way."""
        names = {keys.split_service(k) for k in (*self._services.entries, *self._seen.entries)}
        wanted = [(b, h) for b, h in names if (not binary or b == binary) and (not host or h == host)]
        return sorted(wanted, key=lambda name: f"{name[0]}/{name[1]}")

    def watch_members(self, binary: str = "") -> Subscription:
        """Events for ``binary`` ("" for all) from now on; close it (or use ``with``) when done."""
        return self._events.subscribe(binary)

    # ---- the operator's choice --------------------------------------------------------------
    async def update_member(
        self,
        binary: str,
        host: str,
        status: services_pb2.ServiceStatus.ValueType = members.UNSPECIFIED,
        disabled_reason: str | None = None,
        forced_down: bool | None = None,
    ) -> services_pb2.Service:
        _validate(binary, host, status)
        if not await self._known(binary, host):
            raise NotFound("service", f"{binary}/{host}")
        key = keys.service_admin(binary, host)

        async def attempt() -> state_pb2.ServiceAdmin | retry.Again:
            kv = await self._store.get(key)
            current = state_pb2.ServiceAdmin.FromString(kv.value) if kv else None
            admin = members.apply_update(current, status, disabled_reason, forced_down, instances.now())
            won = await self._store.swap(key, admin.SerializeToString(), kv.mod_revision if kv else 0)
            return admin if won else retry.AGAIN

        admin = await retry.until_done(attempt, what=f"service {binary}/{host}")
        log.info("service %s/%s updated: %s", binary, host, admin)
        return self._member(binary, host, admin=admin)

    async def _known(self, binary: str, host: str) -> bool:
        """Seen by this process's caches, or (if they lag) in etcd."""
        service_key, seen_key = keys.service(binary, host), keys.service_seen(binary, host)
        if service_key in self._services.entries or seen_key in self._seen.entries:
            return True
        return await self._store.get(service_key) is not None or await self._store.get(seen_key) is not None

    # ---- watch listeners --------------------------------------------------------------------
    def _on_service(
        self, key: str, old: Entry[state_pb2.ServiceRecord] | None, new: Entry[state_pb2.ServiceRecord] | None
    ) -> None:
        binary, host = keys.split_service(key)
        seen: state_pb2.ServiceSeen | None = None
        if new is not None and (old is None or old.value.endpoint != new.value.endpoint):
            seen = state_pb2.ServiceSeen(last_seen=instances.now(), endpoint=new.value.endpoint)
        elif new is None and old is not None:
            seen = state_pb2.ServiceSeen(last_seen=instances.now(), endpoint=old.value.endpoint)
        if seen is not None:
            self.seen_writer.write(keys.service_seen(binary, host), seen)
        self._publish(binary, host, seen)

    def _on_admin(self, key: str, _old: object, _new: object) -> None:
        binary, host = keys.split_service(key)
        self._publish(binary, host)

    def _on_host(self, key: str, old: Entry[str] | None, new: Entry[str] | None) -> None:
        """A compute's capabilities: an UPDATED event when its degraded_reason changes."""
        if (old.value if old else "") != (new.value if new else ""):
            self._publish(COMPUTE, keys.split_host(key)[0])

    def _publish(self, binary: str, host: str, seen: state_pb2.ServiceSeen | None = None) -> None:
        member = self._member(binary, host, seen=seen)
        before = self._states.get((binary, host))
        self._states[(binary, host)] = member.state
        if before == member.state:
            kind = servicegroup_pb2.MEMBER_EVENT_TYPE_UPDATED
        elif member.state == members.UP:
            kind = servicegroup_pb2.MEMBER_EVENT_TYPE_UP
        else:
            kind = servicegroup_pb2.MEMBER_EVENT_TYPE_DOWN
        self._events.publish(servicegroup_pb2.MemberEvent(member=member, type=kind))

    def _member(
        self,
        binary: str,
        host: str,
        *,
        admin: state_pb2.ServiceAdmin | None = None,
        seen: state_pb2.ServiceSeen | None = None,
    ) -> services_pb2.Service:
        return members.compose(
            binary,
            host,
            record=self._services.get(keys.service(binary, host)),
            admin=admin if admin is not None else self._admin.get(keys.service_admin(binary, host)),
            seen=seen if seen is not None else self._seen.get(keys.service_seen(binary, host)),
            now=instances.now(),
            degraded_reason=(self._degraded.get(keys.host_capabilities(host)) or "") if binary == COMPUTE else "",
        )


def _validate(binary: str, host: str, status: int) -> None:
    violations = [(name, "required") for name, value in (("binary", binary), ("host", host)) if not value]
    if status not in services_pb2.ServiceStatus.values():
        violations.append(("status", f"unknown status {status}"))
    if violations:
        raise InvalidArgument(violations)


def _is_capabilities(key: str) -> bool:
    return key.endswith(f"/{keys.CAPABILITIES}")


def _degraded_reason(raw: bytes) -> str:
    return state_pb2.HostCapabilities.FromString(raw).degraded_reason

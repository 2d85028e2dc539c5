"""etcd maintenance member by member: each member's database, defragmentation, alarms.

A defragmentation rewrites one member's database file and that member answers nothing else
meanwhile, so members are defragmented one at a time, through a channel to that member alone
(``on_member``), never all together. Alarms are the cluster's: any member lists or clears them.
Used by the launcher's upkeep of the etcd it started and by ``stratus etcd``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from services.core.etcd import EtcdTls, Store
from services.core.etcd_maint import NOSPACE, Alarm, Member, MemberStatus

log = logging.getLogger(__name__)
CONNECT_WAIT_S = 10.0
DEFRAG_TIMEOUT_S = 300.0  # a large database takes a while; the member is blocked meanwhile


@contextlib.asynccontextmanager
async def on_member(url: str, tls: EtcdTls | None = None) -> AsyncIterator[Store]:
    """A store whose channel reaches the member at ``url`` only."""
    store = Store([url], tls=tls)
    try:
        await store.connect(wait_s=CONNECT_WAIT_S)
        yield store
    finally:
        await store.close()


class ClusterMaintenance:
    """The cluster ``store`` reaches, member by member (``tls``: how to reach each member)."""

    def __init__(self, store: Store, tls: EtcdTls | None = None, defrag_timeout_s: float = DEFRAG_TIMEOUT_S) -> None:
        self._store = store
        self._tls = tls
        self._defrag_timeout_s = defrag_timeout_s

    async def alarms(self) -> list[Alarm]:
        return await self._store.alarms()

    async def members(self) -> list[Member]:
        return await self._store.members()

    async def statuses(self) -> list[tuple[Member, MemberStatus]]:
        """Each member with the state of its database."""
        out = []
        for member in await self._store.members():
            async with on_member(_url_of(member), self._tls) as one:
                out.append((member, await one.member_status()))
        return out

    async def defragment(self, member: Member) -> MemberStatus:
        """Defragments ``member`` (only it) and says how its database is after."""
        async with on_member(_url_of(member), self._tls) as one:
            before = await one.member_status()
            await one.defragment(self._defrag_timeout_s)
            after = await one.member_status()
        log.info("etcd member %s defragmented: %d -> %d bytes", member.label, before.db_size, after.db_size)
        return after

    async def compact_now(self) -> int:
        """Drops the history before the current revision (watches from before it list again)."""
        _, revision = await self._store.get_with_revision("")
        try:
            await self._store.compact(revision)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.OUT_OF_RANGE:  # already compacted up to there
                raise
        return revision

    async def disarm(self, kind: str = NOSPACE) -> list[Alarm]:
        """Clears every alarm of ``kind``; the ones it cleared."""
        cleared = [alarm for alarm in await self._store.alarms() if alarm.kind == kind]
        for alarm in cleared:
            await self._store.disarm(alarm)
        return cleared


def _url_of(member: Member) -> str:
    if not member.client_urls:
        raise ConnectionError(f"etcd member {member.label} advertises no client URL")
    return member.client_urls[0]

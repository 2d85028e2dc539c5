"""The launcher's care of the etcd it started: periodic defragmentation, and a way out of NOSPACE.

Why the launcher: it owns that etcd (its flags, its quota, its data dir) and it is a single
process, so there is exactly one upkeep loop and it defragments one member at a time, followers
first and the leader last, with a pause between members. The Stratus services could not do it
without electing one of their replicas first, and an ``--etcd`` cluster belongs to its operator,
whose own tools defragment it (the launcher then leaves it alone).

etcd itself compacts the history (``--auto-compaction-retention``, see ``etcd_proc``); compaction
frees pages inside the database file, defragmentation gives them back to the disk. Every
``alarm_poll_s`` the loop reads the alarms:

- NOSPACE: compact the history up to now; when anything changed since the last try (a delete
  moved the revision, or this is the first try), defragment each member over ``disarm_below`` of
  the quota, in turn; disarm once every member fits under it. (While writes are refused etcd's
  "in use" figure does not move, so only a defragmentation tells what the data takes.) Data that
  does not fit (not history) stays: an operator frees space, or restarts with a larger quota, and
  the loop disarms at its next poll (or ``stratus etcd disarm`` does it at once).
- otherwise, every ``defrag_interval_s`` (0: never): defragment the members whose free pages are
  at least ``free_ratio`` of their file and ``min_free_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.core.etcd import EtcdTls, Store, is_store_outage
from services.core.etcd_maint import NOSPACE, Alarm, Member, MemberStatus, describe
from services.core.etcd_members import ClusterMaintenance
from services.launcher.etcd_proc import DEFAULT_QUOTA_BYTES
from services.launcher.options import StackOptions
from services.launcher.supervise import pause

log = logging.getLogger("stratus.up")

DEFAULT_DEFRAG_INTERVAL_S = 3600.0

Statuses = Sequence[tuple[Member, MemberStatus]]


@dataclass(frozen=True)
class UpkeepPolicy:
    quota_bytes: int = DEFAULT_QUOTA_BYTES
    defrag_interval_s: float = DEFAULT_DEFRAG_INTERVAL_S  # 0: defragment only to get out of NOSPACE
    alarm_poll_s: float = 10.0
    min_free_bytes: int = 16 << 20
    free_ratio: float = 0.25
    member_gap_s: float = 5.0  # between two members' defragmentations
    disarm_below: float = 0.8  # of the quota: what a member's database must fit in to disarm NOSPACE

    @property
    def fit_bytes(self) -> int:
        return int(self.quota_bytes * self.disarm_below)


class Maintenance(Protocol):
    """What the upkeep needs of the cluster (``etcd_members.ClusterMaintenance``)."""

    async def alarms(self) -> list[Alarm]: ...
    async def members(self) -> list[Member]: ...
    async def statuses(self) -> list[tuple[Member, MemberStatus]]: ...
    async def defragment(self, member: Member) -> MemberStatus: ...
    async def compact_now(self) -> int: ...
    async def disarm(self, kind: str = NOSPACE) -> list[Alarm]: ...


def worth_defragmenting(status: MemberStatus, policy: UpkeepPolicy) -> bool:
    """Routine: enough free pages, in bytes and as a share of the file, to be worth the pause."""
    return status.free >= max(policy.min_free_bytes, policy.free_ratio * status.db_size)


def leader_last(chosen: Statuses) -> list[Member]:
    """The members to defragment in order: followers first, the leader last (it is busiest)."""
    return [member for member, status in sorted(chosen, key=lambda pair: pair[1].is_leader)]


def routine_order(statuses: Statuses, policy: UpkeepPolicy) -> list[Member]:
    return leader_last([(m, s) for m, s in statuses if worth_defragmenting(s, policy)])


def rescue_order(statuses: Statuses, policy: UpkeepPolicy) -> list[Member]:
    """Under NOSPACE: the members whose file is over the fit (a defragmentation may shrink it under)."""
    return leader_last([(m, s) for m, s in statuses if s.db_size > policy.fit_bytes])


def all_fit(statuses: Statuses, policy: UpkeepPolicy) -> bool:
    return bool(statuses) and all(status.db_size <= policy.fit_bytes for _, status in statuses)


class EtcdUpkeep:
    """One loop per launcher (``run``); ``tick`` is one look, for tests."""

    def __init__(
        self,
        etcd: Maintenance,
        policy: UpkeepPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._etcd = etcd
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._next_routine = clock() + policy.defrag_interval_s
        self._out_of_space = False  # said so in the log already
        self._rescued_at = -1  # the revision of the last try to get out of NOSPACE

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; etcd unreachable (restarting, say) only skips a look."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:
                if not is_store_outage(exc):
                    raise
                log.warning("etcd upkeep: etcd did not answer (%s); trying again", type(exc).__name__)
            await pause(stop, self._policy.alarm_poll_s)

    async def tick(self) -> None:
        alarms = [a for a in await self._etcd.alarms() if a.kind == NOSPACE]
        if alarms:
            await self._rescue(alarms)
            return
        if self._out_of_space:
            log.warning("etcd takes writes again (its NOSPACE alarm was disarmed)")
            self._out_of_space = False
        if self._policy.defrag_interval_s > 0 and self._clock() >= self._next_routine:
            self._next_routine = self._clock() + self._policy.defrag_interval_s
            await self.defragment_in_turn(routine_order(await self._etcd.statuses(), self._policy))

    async def defragment_in_turn(self, members: Sequence[Member]) -> None:
        """One member after the other, never two at once, with a pause between them."""
        for index, member in enumerate(members):
            if index:
                await self._sleep(self._policy.member_gap_s)
            await self._etcd.defragment(member)

    async def _rescue(self, alarms: Sequence[Alarm]) -> None:
        if not self._out_of_space:
            members = await self._etcd.members()
            for alarm in alarms:
                log.error("%s", describe(alarm, members))
        revision = await self._etcd.compact_now()
        if revision != self._rescued_at:  # nothing changed since the last try: it would not help
            self._rescued_at = revision
            await self.defragment_in_turn(rescue_order(await self._etcd.statuses(), self._policy))
        statuses = await self._etcd.statuses()
        if all_fit(statuses, self._policy):
            cleared = await self._etcd.disarm(NOSPACE)
            log.warning("etcd's databases fit in %d bytes again: NOSPACE disarmed (%d alarm(s))",
                        self._policy.fit_bytes, len(cleared))  # fmt: skip
            self._out_of_space = False
            return
        if not self._out_of_space:
            size = max(status.db_size for _, status in statuses) if statuses else 0
            log.error("etcd's data (%d bytes, defragmented) does not fit in %d bytes (%.0f%% of --etcd-quota-bytes "
                      "%d): free space (delete what is not needed) or restart with a larger --etcd-quota-bytes",
                      size, self._policy.fit_bytes, 100 * self._policy.disarm_below,
                      self._policy.quota_bytes)  # fmt: skip
        self._out_of_space = True


def local_etcd_upkeep(store: Store, opts: StackOptions, tls: EtcdTls | None = None) -> EtcdUpkeep:
    """The upkeep of the etcd ``stratus up`` started (on loopback; ``tls``: the launcher's
    certificate for it), with the stack's options."""
    interval = DEFAULT_DEFRAG_INTERVAL_S if opts.etcd_defrag_interval_s is None else opts.etcd_defrag_interval_s
    policy = UpkeepPolicy(quota_bytes=opts.etcd_quota_bytes or DEFAULT_QUOTA_BYTES, defrag_interval_s=interval)
    return EtcdUpkeep(ClusterMaintenance(store, tls), policy)

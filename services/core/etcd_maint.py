"""What etcd's maintenance calls say, as Stratus reads them: alarms, members, a member's database.

etcd raises alarms for the whole cluster: NOSPACE when a member's database reached its quota
(``--quota-backend-bytes``): from then on it refuses every write but a delete with
"etcdserver: mvcc: database space exceeded" until the alarm is disarmed; CORRUPT when members'
data disagree. ``Store.alarms``, ``Store.members`` and ``Store.member_status`` (``etcd.py``)
answer with these; ``etcd_members`` acts on each member in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NOSPACE = "NOSPACE"
CORRUPT = "CORRUPT"
ALARM_CODES = {NOSPACE: 1, CORRUPT: 2}  # etcdserverpb.AlarmType
DISARM_HINT = "free space, then `stratus etcd disarm` (or `etcdctl alarm disarm`)"


@dataclass(frozen=True, slots=True)
class Alarm:
    member_id: int
    kind: str  # NOSPACE, CORRUPT, or ``ALARM_<code>`` for one this code does not know


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str
    client_urls: tuple[str, ...]

    @property
    def label(self) -> str:
        """``stratus (http://127.0.0.1:2379)``: how messages name it."""
        where = f" ({self.client_urls[0]})" if self.client_urls else ""
        return f"{self.name or format(self.id, 'x')}{where}"


@dataclass(frozen=True, slots=True)
class MemberStatus:
    member_id: int
    leader_id: int
    db_size: int  # bytes of the database file: what the quota is compared with
    db_size_in_use: int  # bytes the keys and their history take; the rest is free pages

    @property
    def free(self) -> int:
        """What a defragmentation would give back."""
        return max(0, self.db_size - self.db_size_in_use)

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id


def alarm_kind(code: int) -> str:
    for kind, known in ALARM_CODES.items():
        if known == code:
            return kind
    return f"ALARM_{code}"


def member_named(member_id: int, members: Sequence[Member]) -> Member | None:
    return next((m for m in members if m.id == member_id), None)


def describe(alarm: Alarm, members: Sequence[Member]) -> str:
    """One line for an operator: which member, what is wrong, what to do."""
    member = member_named(alarm.member_id, members)
    who = f"etcd member {member.label if member else format(alarm.member_id, 'x')}"
    if alarm.kind == NOSPACE:
        return (
            f"{who} is out of space (alarm NOSPACE: database space exceeded, its quota reached): "
            f"etcd refuses writes until the alarm is disarmed; {DISARM_HINT}"
        )
    if alarm.kind == CORRUPT:
        return f"{who} has alarm CORRUPT: its data disagrees with the other members'; restore it from a snapshot"
    return f"{who} has alarm {alarm.kind}"

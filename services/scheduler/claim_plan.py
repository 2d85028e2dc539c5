"""What the claimer commits: a claim waiting for its transaction (``PendingClaim``), how it ended
(``Outcome``), and one transaction's plan (``Plan``): per host the usage with its new claims, per
server group the record with its new placements, per claim the server's record naming the host,
each compared on the mod revision it was read at."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from services.core import keys
from services.core.claims import Totals
from services.scheduler.request import SchedulingRequest
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

# etcd refuses a request larger than its --max-request-bytes (default 1.5 MiB): a claims
# transaction takes no more claims once it holds about a third of that (it always takes one).
MAX_TXN_BYTES = 512 << 10
# Per key of a transaction: the compare, the put and the read-back each carry it, with the store's
# prefix (allowed for here) and their framing.
KEY_ALLOWANCE = 64


class Outcome(enum.Enum):
    CLAIMED = "claimed"
    REFUSED = "refused"  # the host no longer fits with its fresh usage: decide again
    GONE = "gone"  # the host stopped reporting: decide again
    GROUP_CHANGED = "group_changed"  # the server group changed under the decision: decide again
    DELETED = "deleted"  # the server's record is gone or being deleted: nothing to place
    PLACED_ELSEWHERE = "placed_elsewhere"  # the record names another host already


@dataclass(eq=False)
class PendingClaim:
    host: str
    claim: state_pb2.Claim
    request: SchedulingRequest
    # The host's usage revision (and the group's) the decision was made against.
    seen_revision: int
    group_id: str
    group_revision: int
    future: asyncio.Future[Outcome]
    # A host the server holds a claim on already (a retried request): no fit check, no liveness check.
    held: bool = False
    # The server's record and its mod revision, once read (None: there is none).
    record: state_pb2.InstanceRecord | None = None
    record_revision: int = 0
    record_known: bool = False
    totals: Totals = field(init=False)

    def __post_init__(self) -> None:
        c = self.claim
        self.totals = Totals(c.vcpus, c.ram_mb, c.disk_gb, 1)


@dataclass
class HostPlan:
    revision: int
    usage: state_pb2.HostUsage
    claims: list[PendingClaim]


@dataclass
class GroupPlan:
    revision: int
    record: state_pb2.ServerGroupRecord
    claims: list[PendingClaim]


@dataclass
class RecordPlan:
    revision: int
    value: bytes  # the record as it will be written: naming the claim's host
    claim: PendingClaim


@dataclass
class Plan:
    hosts: dict[str, HostPlan] = field(default_factory=dict)
    groups: dict[str, GroupPlan] = field(default_factory=dict)
    records: dict[str, RecordPlan] = field(default_factory=dict)
    # A second claim of a server, or a claim past the transaction's size: next batch.
    deferred: list[PendingClaim] = field(default_factory=list)
    size: int = 0  # bytes the transaction's request holds so far (about)

    def cost(self, pc: PendingClaim, host_plan: HostPlan, group: tuple[state_pb2.ServerGroupRecord, int] | None) -> int:
        """The bytes ``pc`` adds to the request: its record naming the host, its claim in the host's
        usage (with the usage itself for the host's first claim) and in its group's record as held
        (with the record for the group's first claim)."""
        size = _key_bytes(keys.instance(pc.claim.instance_id)) + len(pc.host) + 8
        size += pc.record.ByteSize() if pc.record is not None else 0
        size += pc.claim.ByteSize() + len(pc.claim.instance_id) + 8
        if not host_plan.claims:
            size += _key_bytes(keys.host_usage(pc.host)) + host_plan.usage.ByteSize()
        if pc.group_id:
            size += len(pc.claim.instance_id) + len(pc.host) + 8
            if pc.group_id not in self.groups:
                size += _key_bytes(keys.server_group(pc.group_id)) + (group[0].ByteSize() if group else 0)
        return size

    def take(self, cost: int) -> bool:
        """Counts a claim of ``cost`` bytes in; False (nothing counted) when the request would grow
        past ``MAX_TXN_BYTES`` with it and holds a claim already."""
        if self.size and self.size + cost > MAX_TXN_BYTES:
            return False
        self.size += cost
        return True

    def keys(self) -> list[str]:
        return (
            [keys.host_usage(h) for h in self.hosts]
            + [keys.server_group(g) for g in self.groups]
            + [keys.instance(i) for i in self.records]
        )

    def revisions(self) -> list[int]:
        return (
            [p.revision for p in self.hosts.values()]
            + [p.revision for p in self.groups.values()]
            + [p.revision for p in self.records.values()]
        )

    def values(self) -> list[bytes]:
        return (
            [p.usage.SerializeToString() for p in self.hosts.values()]
            + [p.record.SerializeToString() for p in self.groups.values()]
            + [p.value for p in self.records.values()]
        )

    def split(self, fresh: Fresh) -> tuple[Fresh, Fresh, Fresh]:
        """The fresh reads of the hosts, the groups and the records."""
        n_hosts, n_groups = len(self.hosts), len(self.groups)
        return fresh[:n_hosts], fresh[n_hosts : n_hosts + n_groups], fresh[n_hosts + n_groups :]

    def claims(self) -> list[PendingClaim]:
        return [c for p in self.hosts.values() for c in p.claims]


def _key_bytes(key: str) -> int:
    return 3 * (len(key) + KEY_ALLOWANCE + 8)


Fresh = list[tuple[bytes, int] | None]  # per key of a plan: (value, mod revision), None if absent


def know_record(pc: PendingClaim, read: tuple[bytes, int] | None) -> None:
    pc.record = state_pb2.InstanceRecord.FromString(read[0]) if read is not None else None
    pc.record_revision = read[1] if read is not None else 0
    pc.record_known = True


def check_record(pc: PendingClaim) -> Outcome | None:
    """None when the server's record may name the claim's host."""
    record = pc.record
    if record is None or record.server.task_state == servers_pb2.TaskState.TASK_STATE_DELETING:
        return Outcome.DELETED
    if record.server.host not in ("", pc.host):
        return Outcome.PLACED_ELSEWHERE
    return None


def ranges(resp: Any) -> Fresh:
    """(value, mod revision) per range response of a transaction, None for an absent key."""
    out: Fresh = []
    for op in resp.responses:
        kvs = op.response_range.kvs
        out.append((bytes(kvs[0].value), int(kvs[0].mod_revision)) if kvs else None)
    return out

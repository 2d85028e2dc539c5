"""The invariants a chaos run must leave behind, checked against what the client saw.

- every accepted create is exactly one server (none lost, none doubled), found by the request id the
  client put in its metadata; a deleted one is none;
- no server in a transitional state (a task set, or BUILD);
- every ERROR server has a fault;
- the claims on the hosts (etcd ``hosts/<host>/usage``) are exactly the placed servers (same
  instance ids, same hosts);
- every fake domain belongs to a server placed on its host; a deleted server left none.

Servers are read through the public API (admin, all projects); claims from etcd; domains from the
fake driver's files (services/compute/drivers/fake/domains.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from services.compute.drivers.fake.domains import read_domains
from services.core import keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

RID_KEY = "chaos_rid"
S = servers_pb2.ServerStatus


@dataclass(frozen=True)
class Violation:
    kind: str
    subject: str  # a server id, a request id or a host
    evidence: str


@dataclass
class Expected:
    """What the client knows: request id -> the id a reply gave ("" if none), and what it deleted."""

    replied: dict[str, str] = field(default_factory=dict)
    unanswered: set[str] = field(default_factory=set)  # creates the client gave up on or saw refused
    deleted: dict[str, str] = field(default_factory=dict)  # server id -> request id, delete seen through
    undeleted: dict[str, str] = field(default_factory=dict)  # server id -> request id, delete not seen through


@dataclass
class Snapshot:
    servers: list[servers_pb2.Server]
    claims: dict[str, list[str]]  # instance id -> hosts holding a claim for it
    domains: dict[str, list[str]]  # instance id -> hosts running a domain of it


async def read_claims(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    kvs, _ = await store.read_all(keys.HOSTS, most=100_000)
    for kv in kvs:
        host, what = keys.split_host(kv.key)
        if what != keys.USAGE:
            continue
        for instance_id in state_pb2.HostUsage.FromString(kv.value).claims:
            out[instance_id].append(host)
    return dict(out)


def read_all_domains(domains_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for path in sorted(domains_dir.glob("*.json")):
        for instance_id in read_domains(path):
            out[instance_id].append(path.stem)
    return dict(out)


def status_name(server: servers_pb2.Server) -> str:
    return S.Name(server.status).removeprefix("SERVER_STATUS_")  # type: ignore[arg-type]


def _task(server: servers_pb2.Server) -> str:
    return servers_pb2.TaskState.Name(server.task_state).removeprefix("TASK_STATE_")  # type: ignore[arg-type]


def describe(server: servers_pb2.Server) -> str:
    fault = f" fault={server.fault.message!r}" if server.fault.message else ""
    return f"{server.id} {status_name(server)}/{_task(server)} host={server.host or '-'}{fault}"


def check(expected: Expected, snap: Snapshot) -> list[Violation]:
    out: list[Violation] = []
    by_rid: dict[str, list[servers_pb2.Server]] = defaultdict(list)
    for server in snap.servers:
        by_rid[server.metadata.get(RID_KEY, "")].append(server)
    out += _creates(expected, by_rid)
    out += _states(snap.servers)
    out += _claims(snap)
    out += _domains(expected, snap)
    return out


def _creates(expected: Expected, by_rid: dict[str, list[servers_pb2.Server]]) -> list[Violation]:
    out = []
    deleted_rids = {rid: sid for sid, rid in expected.deleted.items()}
    stuck_rids = {rid: sid for sid, rid in expected.undeleted.items()}
    for rid, found in by_rid.items():
        if len(found) > 1:
            out.append(Violation("doubled", rid, "; ".join(describe(s) for s in found)))
    for rid, reply_id in expected.replied.items():
        found = by_rid.get(rid, [])
        if rid in deleted_rids:
            if found:
                out.append(Violation("deleted_but_present", deleted_rids[rid], "; ".join(describe(s) for s in found)))
        elif rid in stuck_rids:
            if found:
                out.append(Violation("delete_stuck", stuck_rids[rid], "; ".join(describe(s) for s in found)))
        elif not found:
            out.append(Violation("lost", reply_id, f"create {rid} answered with {reply_id}; no server has its rid"))
        elif reply_id not in {s.id for s in found}:
            out.append(Violation("other_id", rid, f"answered {reply_id}, found {[s.id for s in found]}"))
    return out


def _states(servers: list[servers_pb2.Server]) -> list[Violation]:
    out = []
    for server in servers:
        if server.task_state or server.status == S.SERVER_STATUS_BUILD:
            out.append(Violation("transitional", server.id, describe(server)))
        if server.status == S.SERVER_STATUS_ERROR and not server.fault.message:
            out.append(Violation("error_without_fault", server.id, describe(server)))
    return out


def _claims(snap: Snapshot) -> list[Violation]:
    out = []
    placed = {s.id: s for s in snap.servers if s.host}
    for instance_id, hosts in snap.claims.items():
        server = placed.get(instance_id)
        if server is None:
            known = next((s for s in snap.servers if s.id == instance_id), None)
            what = describe(known) if known else "no such server"
            out.append(Violation("claim_without_server", instance_id, f"claims on {hosts}; server: {what}"))
        elif hosts != [server.host]:
            out.append(Violation("claim_on_other_host", instance_id, f"claims on {hosts}; {describe(server)}"))
    for instance_id, server in placed.items():
        if instance_id not in snap.claims:
            out.append(Violation("placed_without_claim", instance_id, describe(server)))
    return out


def _domains(expected: Expected, snap: Snapshot) -> list[Violation]:
    out = []
    placed = {s.id: s.host for s in snap.servers if s.host}
    for instance_id, hosts in snap.domains.items():
        stray = [h for h in hosts if placed.get(instance_id) != h]
        if not stray:
            continue
        if instance_id in expected.deleted:
            out.append(Violation("deleted_left_domain", instance_id, f"domain on {stray} after its delete"))
        else:
            where = placed.get(instance_id) or "nowhere"
            out.append(Violation("stray_domain", instance_id, f"domain on {stray}; the server is placed {where}"))
    for instance_id in expected.deleted:
        if instance_id in snap.claims:
            out.append(Violation("deleted_left_claim", instance_id, f"claims on {snap.claims[instance_id]}"))
    return out


def active_without_domain(snap: Snapshot) -> list[str]:
    """ACTIVE servers whose host runs no domain of theirs (reported, not one of the invariants)."""
    return [
        s.id for s in snap.servers if s.status == S.SERVER_STATUS_ACTIVE and s.host not in snap.domains.get(s.id, [])
    ]

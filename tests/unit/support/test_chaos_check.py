"""The chaos run's invariant checks find each kind of violation (and none in a clean snapshot)."""

from __future__ import annotations

from stratus.v1 import servers_pb2
from tests.support.chaos_check import RID_KEY, Expected, Snapshot, check

S = servers_pb2.ServerStatus
T = servers_pb2.TaskState


def server(
    sid: str, rid: str, host: str = "c1", status: int = S.SERVER_STATUS_ACTIVE, **kw: object
) -> servers_pb2.Server:
    return servers_pb2.Server(id=sid, name=rid, host=host, status=status, metadata={RID_KEY: rid}, **kw)  # type: ignore[arg-type]


def kinds(expected: Expected, snap: Snapshot) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in check(expected, snap):
        out.setdefault(v.kind, []).append(v.subject)
    return out


def test_a_clean_run_has_no_violations() -> None:
    expected = Expected(replied={"r1": "s1", "r2": "s2", "r3": "s3"}, deleted={"s3": "r3"})
    snap = Snapshot([server("s1", "r1"), server("s2", "r2", host="c2")], {"s1": ["c1"], "s2": ["c2"]},
                    {"s1": ["c1"], "s2": ["c2"]})  # fmt: skip
    assert check(expected, snap) == []


def test_lost_doubled_and_resurrected_creates() -> None:
    expected = Expected(replied={"r1": "s1", "r2": "s2", "r3": "s3"}, unanswered={"r4"}, deleted={"s3": "r3"})
    servers = [server("s2", "r2"), server("s2b", "r2"), server("s3", "r3"), server("s4", "r4"), server("s4b", "r4")]
    snap = Snapshot(servers, {s.id: ["c1"] for s in servers}, {s.id: ["c1"] for s in servers})
    found = kinds(expected, snap)
    assert found["lost"] == ["s1"]
    assert sorted(found["doubled"]) == ["r2", "r4"]
    assert found["deleted_but_present"] == ["s3"]


def test_stuck_states_and_errors_without_a_fault() -> None:
    servers = [
        server("s1", "r1", status=S.SERVER_STATUS_BUILD),
        server("s2", "r2", task_state=T.TASK_STATE_DELETING),
        server("s3", "r3", host="", status=S.SERVER_STATUS_ERROR),
        server("s4", "r4", host="", status=S.SERVER_STATUS_ERROR, fault=servers_pb2.Fault(message="no valid host")),
    ]
    snap = Snapshot(servers, {"s1": ["c1"], "s2": ["c1"]}, {"s1": ["c1"], "s2": ["c1"]})
    found = kinds(Expected(), snap)
    assert sorted(found["transitional"]) == ["s1", "s2"]
    assert found["error_without_fault"] == ["s3"]


def test_claims_must_equal_the_placed_servers() -> None:
    servers = [server("s1", "r1"), server("s2", "r2"), server("s3", "r3", host="")]
    claims = {"s1": ["c2"], "s3": ["c1"], "gone": ["c1"]}
    found = kinds(Expected(deleted={"gone": "r9"}), Snapshot(servers, claims, {"s1": ["c1"], "s2": ["c1"]}))
    assert found["claim_on_other_host"] == ["s1"]
    assert found["placed_without_claim"] == ["s2"]
    assert sorted(found["claim_without_server"]) == ["gone", "s3"]
    assert found["deleted_left_claim"] == ["gone"]


def test_every_domain_belongs_to_a_server_placed_on_its_host() -> None:
    servers = [server("s1", "r1"), server("s2", "r2", host="")]
    domains = {"s1": ["c1", "c2"], "s2": ["c1"], "gone": ["c2"]}
    found = kinds(Expected(deleted={"gone": "r9"}), Snapshot(servers, {"s1": ["c1"]}, domains))
    assert sorted(found["stray_domain"]) == ["s1", "s2"]
    assert found["deleted_left_domain"] == ["gone"]

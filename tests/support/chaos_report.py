"""What a chaos run is asked to do (ChaosPlan) and what it saw (ChaosReport, with its summary)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.support.chaos_check import Violation


@dataclass
class ChaosPlan:
    creates: int = 150
    deletes: int = 50
    kills: int = 10
    freezes: int = 2
    freeze_s: tuple[float, float] = (2.0, 3.0)
    chaos_interval_s: float = 3.0  # between two chaos events (kills and freezes), jittered
    concurrency: int = 24  # client calls in flight at most
    call_timeout_s: float = 10.0
    op_budget_s: float = 150.0  # how long the client keeps retrying one create or delete
    settle_s: float = 120.0
    seed: int | None = None
    flavor: str = "m1.tiny"
    image: str = "tiny"


@dataclass
class ChaosReport:
    run_id: str
    plan: ChaosPlan
    replied: int = 0
    found_later: int = 0  # creates never answered (or refused) whose server exists
    refused: Counter[str] = field(default_factory=Counter)  # final error codes of unanswered creates
    gave_up: int = 0
    deletes_done: int = 0
    deletes_unfinished: int = 0
    retries: Counter[str] = field(default_factory=Counter)  # "create UNAVAILABLE" -> count
    kills: Counter[str] = field(default_factory=Counter)
    kill_log: list[str] = field(default_factory=list)
    freezes: list[float] = field(default_factory=list)
    workload_s: float = 0.0
    create_phase_s: float = 0.0
    settle_s: float | None = None  # None: still violated at the deadline
    servers_at_end: Counter[str] = field(default_factory=Counter)
    claims_at_end: int = 0
    domains_at_end: int = 0
    violations: list[Violation] = field(default_factory=list)
    # what the first check after the workload found (cleared while settling, unless still in violations)
    first_violations: list[Violation] = field(default_factory=list)
    active_without_domain: list[str] = field(default_factory=list)
    repairs: dict[str, list[str]] = field(default_factory=dict)  # from the logs (chaos_logs.py)
    log_errors: dict[str, int] = field(default_factory=dict)

    @property
    def creates_per_s(self) -> float:
        return self.replied / self.create_phase_s if self.create_phase_s else 0.0

    def violations_by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    def summary(self, max_listed: int = 20) -> str:
        p = self.plan
        lines = [
            f"chaos run {self.run_id}: {p.creates} creates, {p.deletes} deletes planned",
            f"  creates: {self.replied} answered, {self.found_later} found later by request_id, "
            f"{self.gave_up} given up, refused {dict(self.refused) or '{}'}",
            f"  creates/s (answered, over {self.create_phase_s:.1f}s): {self.creates_per_s:.1f}",
            f"  deletes: {self.deletes_done} seen through to NOT_FOUND, {self.deletes_unfinished} unfinished",
            f"  client retries: {dict(self.retries) or '{}'}",
            f"  kills: {sum(self.kills.values())} {dict(self.kills)}; etcd freezes: {len(self.freezes)} "
            f"({', '.join(f'{s:.1f}s' for s in self.freezes)})",
            f"  workload {self.workload_s:.1f}s; settled "
            + (f"after {self.settle_s:.1f}s" if self.settle_s is not None else f"NOT within {p.settle_s:g}s"),
            f"  at the end: servers {dict(self.servers_at_end)}, {self.claims_at_end} claims, "
            f"{self.domains_at_end} fake domains",
            f"  violations: {len(self.violations)} {dict(self.violations_by_kind()) or ''}",
        ]
        lines += [f"    {v.kind} {v.subject}: {v.evidence}" for v in self.violations[:max_listed]]
        if self.first_violations:
            first = Counter(v.kind for v in self.first_violations)
            lines.append(f"  right after the workload (before settling): {len(self.first_violations)} {dict(first)}")
            lines += [f"    {v.kind} {v.subject}: {v.evidence}" for v in self.first_violations[:5]]
        if len(self.violations) > max_listed:
            lines.append(f"    ... and {len(self.violations) - max_listed} more")
        if self.active_without_domain:
            ids = self.active_without_domain
            lines.append(f"  note: {len(ids)} ACTIVE servers with no domain on their host: {ids[:10]}")
        for kind, ids in sorted(self.repairs.items()):
            lines.append(f"  repaired ({kind}, from the logs): {len(ids)} {ids[:5]}{' ...' if len(ids) > 5 else ''}")
        if self.log_errors:
            lines.append(f"  ERROR lines or tracebacks in the logs: {self.log_errors}")
        lines += [f"  {entry}" for entry in self.kill_log]
        return "\n".join(lines)

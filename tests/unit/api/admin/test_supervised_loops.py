"""The claim audit's periodic loop comes back after an unexpected failure of a round."""

from __future__ import annotations

import pytest

from services.api.admin.claim_audit import AuditResult, ClaimAudit
from services.core.etcd import Store
from tests.support.supervision import FailOnce, Restarts, eventually, fast_restarts


async def test_an_audit_round_that_fails_unexpectedly_runs_again(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_restarts(monkeypatch)
    audit = ClaimAudit(store)
    rounds: list[float] = []

    async def run_once(spread_s: float = 0.0) -> AuditResult:
        rounds.append(spread_s)
        return AuditResult([])

    failing = FailOnce(run_once)
    monkeypatch.setattr(audit, "run_once", failing)
    restarts = Restarts("claim-audit")
    audit.start(0.01)
    try:
        await restarts.wait()
        await eventually(lambda: len(rounds) >= 2)
        assert failing.calls >= 3
    finally:
        await audit.stop()

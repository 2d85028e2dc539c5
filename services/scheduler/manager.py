"""Choosing a host for an instance: filter, weigh, then claim the best by compare-and-swap.

Several schedulers may run at once over the same hosts; none holds a lock. Each claims by
compare-and-swap on ``hosts/<host>/usage`` at the revision its cache saw. A lost swap means
another claim landed first: the host's usage is read again, the filters run again on it, and the
claim is retried there or the next host is tried. A request never fails because of a race.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence

from services.core import claims, instances
from services.core.errors import Aborted, InvalidArgument, Unimplemented
from services.core.etcd import Store
from services.core.telemetry import tracer
from services.scheduler.filtering import FilterRun
from services.scheduler.filters import Filter
from services.scheduler.host_state import HostState, HostStateCache
from services.scheduler.request import SchedulingRequest
from services.scheduler.weighers import Weigher, weigh_hosts
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import placement_pb2

log = logging.getLogger(__name__)

# Lost swaps on one host before moving on to the next (each loss means another claim landed).
MAX_CLAIM_ATTEMPTS = 50


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    REFUSED = "refused"  # the host no longer passes the filters with its fresh usage
    GONE = "gone"  # the host stopped reporting while we tried
    CONTENDED = "contended"  # lost every swap


class SchedulerManager:
    def __init__(
        self, store: Store, filters: Sequence[Filter], weighers: Sequence[Weigher], *, alternates: int = 2
    ) -> None:
        self._store = store
        self.hosts = HostStateCache(store)
        self._filters = list(filters)
        self._weighers = list(weighers)
        self.alternates = alternates

    async def start(self) -> None:
        await self.hosts.start()

    async def stop(self) -> None:
        await self.hosts.stop()

    def lease_records(self) -> dict[str, bytes]:
        return {}

    async def select_destinations(
        self, spec: scheduler_pb2.RequestSpec, alternates: int | None = None
    ) -> scheduler_pb2.SelectDestinationsResponse:
        """Claims a host for ``spec``; ``alternates`` (default: the configured number) more that fit."""
        validate(spec)
        wanted = self.alternates if alternates is None else alternates
        request = SchedulingRequest.of(spec)
        run = FilterRun(self._filters, request)
        candidates = [w.host for w in weigh_hosts(self._weighers, run.run(self.hosts.hosts()), request)]
        held = self._held_host(spec)
        if held is not None:
            log.info("instance %s already holds a claim on %s", spec.instance_id, held)
            return _response(held, [h for h in candidates if h.host != held], wanted)
        contended = False
        for i, host in enumerate(candidates):
            outcome = await self._claim(host, run)
            if outcome is ClaimOutcome.CLAIMED:
                log.info("instance %s claimed on %s", spec.instance_id, host.host)
                return _response(host.host, candidates[i + 1 :], wanted)
            contended = contended or outcome is ClaimOutcome.CONTENDED
        if contended:
            raise Aborted(f"hosts for instance {spec.instance_id} are too contended to claim; try again")
        raise run.no_valid_host()

    async def explain_placement(self, spec: scheduler_pb2.RequestSpec) -> placement_pb2.PlacementExplanation:
        raise Unimplemented("ExplainPlacement is being built (issue 3)")

    def _held_host(self, spec: scheduler_pb2.RequestSpec) -> str | None:
        """The host a retried request already claimed, unless that host failed it."""
        held = sorted(self.hosts.holders(spec.instance_id) - set(spec.ignore_hosts))
        return held[0] if held else None

    async def _claim(self, host: HostState, run: FilterRun) -> ClaimOutcome:
        spec = run.request.spec
        claim = state_pb2.Claim(
            instance_id=spec.instance_id,
            project_id=spec.project_id,
            vcpus=spec.resources.vcpus,
            ram_mb=spec.resources.ram_mb,
            disk_gb=spec.resources.disk_gb,
            created_at=instances.now(),
        )
        attributes = {"stratus.instance_id": spec.instance_id, "stratus.host": host.host}
        with tracer().start_as_current_span("scheduler.claim", attributes=attributes) as span:
            outcome = ClaimOutcome.CONTENDED
            for attempt in range(1, MAX_CLAIM_ATTEMPTS + 1):
                span.set_attribute("stratus.claim.attempts", attempt)
                if await claims.try_claim(self._store, host.host, claim, host.usage, host.usage_revision):
                    outcome = ClaimOutcome.CLAIMED
                    break
                fresh = await self.hosts.refresh_usage(host.host)
                if fresh is None:
                    outcome = ClaimOutcome.GONE
                    break
                if spec.instance_id in fresh.instance_ids:
                    outcome = ClaimOutcome.CLAIMED  # a retry of this request won it elsewhere
                    break
                if not run.recheck(fresh):
                    outcome = ClaimOutcome.REFUSED
                    break
                host = fresh
            span.set_attribute("stratus.claim.outcome", outcome.value)
            return outcome


def validate(spec: scheduler_pb2.RequestSpec) -> None:
    violations = []
    if not spec.instance_id:
        violations.append(("spec.instance_id", "required"))
    for name in ("vcpus", "ram_mb", "disk_gb"):
        if getattr(spec.resources, name) < 0:
            violations.append((f"spec.resources.{name}", "must not be negative"))
    if violations:
        raise InvalidArgument(violations)


def _response(host: str, others: Sequence[HostState], alternates: int) -> scheduler_pb2.SelectDestinationsResponse:
    return scheduler_pb2.SelectDestinationsResponse(
        selected=scheduler_pb2.Destination(host=host),
        alternates=[scheduler_pb2.Destination(host=h.host) for h in others[: max(alternates, 0)]],
    )

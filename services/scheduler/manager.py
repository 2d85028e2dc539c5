"""Choosing a host for an instance: filter, weigh, then claim the best by compare-and-swap.

Several schedulers may run at once over the same hosts; none holds a lock. A decision runs over
the host table (``engine.py``) with this scheduler's in-flight claims already counted, and its
claim is committed by ``claimer.py`` (compare-and-swap on ``hosts/<host>/usage``, on the server's
record, which names the host in the same transaction, and on the server group's record when the
request is in one). A claim the claimer hands back (the host no
longer fits with fresh usage, it went away, or the group changed) is decided again against the
fresh state: a request never fails because of a race.
"""

from __future__ import annotations

import gc
import logging
import random
import time
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from services.core import instances
from services.core.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    StratusError,
    Unavailable,
)
from services.core.etcd import Store
from services.scheduler.chains import EngineConfig
from services.scheduler.claimer import Claimer, Outcome
from services.scheduler.engine import Engine
from services.scheduler.explain import explanation
from services.scheduler.filtering import FilterRun
from services.scheduler.filters import Filter
from services.scheduler.groups import GroupCache
from services.scheduler.host_state import HostState, HostStateCache
from services.scheduler.options import OptionsWatcher
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import HostTable
from services.scheduler.weighers import Weigher
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import placement_pb2

log = logging.getLogger(__name__)

TRACER = trace.get_tracer("stratus")  # a proxy until tracing is set up: then the real one
# Decisions for one request before giving up (each retry means the state it saw changed).
MAX_DECISIONS = 100
# From this many hosts on, the objects the caches hold once loaded are frozen (``settle_heap``).
FREEZE_AT_HOSTS = 10_000


class SchedulerManager:
    def __init__(
        self,
        store: Store,
        filters: Sequence[Filter] | None = None,
        weighers: Sequence[Weigher] | None = None,
        *,
        alternates: int = 2,
        options: OptionsWatcher | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Either fixed ``filters`` and ``weighers``, or ``options`` to build (and rebuild) them."""
        if options is not None and (filters is not None or weighers is not None):
            raise ValueError("give either filters and weighers, or options")
        self._store = store
        self._options = options
        self._fixed = EngineConfig(options={}, filters=list(filters or ()), weighers=list(weighers or ()))
        self.alternates = alternates
        self.hosts = HostStateCache(store)
        self.groups = GroupCache(store)
        self.table = HostTable()
        self.hosts.listen(self.table.update)
        self.engine = Engine(self.table, self.state_of, rng)
        self.claimer = Claimer(store, self.hosts, self.groups, self.table, self._fits)

    @property
    def config(self) -> EngineConfig:
        return self._options.config if self._options is not None else self._fixed

    async def start(self) -> None:
        """Loads the caches with the cyclic collector paused (what they load lives on: collections
        would only walk it, 1.5 s of a start at 100,000 hosts), then settles them when large."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            await self.groups.start()
            await self.hosts.start()
        finally:
            if collecting:
                gc.enable()
        if len(self.table) >= FREEZE_AT_HOSTS:
            settle_heap()
        if self._options is not None:
            await self._options.start()

    async def stop(self) -> None:
        if self._options is not None:
            await self._options.stop()
        await self.claimer.stop()
        await self.hosts.stop()
        await self.groups.stop()

    def lease_records(self) -> dict[str, bytes]:
        return {}

    def state_of(self, host: str) -> HostState | None:
        """The host's state with this scheduler's unconfirmed claims counted as taken."""
        state = self.hosts.get(host)
        return state.with_pending(self.claimer.pending(host)) if state is not None else None

    def states(self) -> list[HostState]:
        return [s.with_pending(self.claimer.pending(s.host)) for s in self.hosts.hosts()]

    async def select_destinations(
        self, spec: scheduler_pb2.RequestSpec, alternates: int | None = None,
        record: tuple[state_pb2.InstanceRecord, int] | None = None,
    ) -> scheduler_pb2.SelectDestinationsResponse:  # fmt: skip
        """Claims a host for ``spec``; ``alternates`` (default: the configured number) more that fit.
        ``record``: the server's record and its mod revision as the caller read them, which the
        claim's transaction writes with the host (else the claimer reads it: one more round trip)."""
        validate(spec)
        if record is not None and record[0].server.id != spec.instance_id:
            raise InvalidArgument([("instance.server.id", "must be spec.instance_id")])
        wanted = max(self.alternates if alternates is None else alternates, 0)
        claim = claim_for(spec)
        for attempt in range(1, MAX_DECISIONS + 1):
            config = self.config
            request, group = await self._request(spec)
            ranking = self.engine.rank(config, request, config.host_subset_size + wanted)
            held = self._held_host(spec)
            if held is not None:
                log.info("instance %s already holds a claim on %s", spec.instance_id, held)
                host, others = held, [h for h in ranking.hosts if h != held]
            elif not ranking:
                raise self._no_valid_host(config, request)
            else:
                host, others = self.engine.pick(ranking, config.host_subset_size)
            attributes: dict[str, str | int] = {
                "stratus.instance_id": spec.instance_id,
                "stratus.host": host,
                "stratus.scheduler.decision": attempt,
            }
            with TRACER.start_as_current_span("scheduler.claim", attributes=attributes) as span:
                outcome = await self.claimer.submit(host, claim, request, group, held=held is not None, record=record)
                span.set_attribute("stratus.claim.outcome", outcome.value)
            if outcome is Outcome.CLAIMED:
                log.info("instance %s claimed on %s", spec.instance_id, host)
                return _response(host, others, wanted)
            if outcome is Outcome.DELETED:
                raise FailedPrecondition(
                    f"server {spec.instance_id} is gone or being deleted: not placed",
                    reason="SERVER_DELETING", metadata={"instance_id": spec.instance_id},
                )  # fmt: skip
            if outcome is Outcome.PLACED_ELSEWHERE:
                placed = await self._placed_on(spec)
                if placed:
                    return _response(placed, [h for h in others if h != placed], wanted)
                continue  # taken off that host meanwhile: decide again
            log.info("instance %s: claim on %s %s; deciding again", spec.instance_id, host, outcome.value)
        raise Aborted(f"hosts for instance {spec.instance_id} are too contended to claim; try again")

    async def explain_placement(self, spec: scheduler_pb2.RequestSpec) -> placement_pb2.PlacementExplanation:
        """What a create would do now, claiming nothing."""
        validate(spec)
        config = self.config
        request, _ = await self._request(spec)
        ranking = self.engine.rank(config, request, 10)
        return explanation(config, request, self.states(), ranking)

    async def _request(self, spec: scheduler_pb2.RequestSpec) -> tuple[SchedulingRequest, tuple[str, int] | None]:
        """The request as filters see it, and the group (id, revision) its claim must swap."""
        group_id = spec.server_group_id
        if not group_id:
            return SchedulingRequest.of(spec), None
        held = await self.groups.resolve(group_id)
        if held is None:
            raise NotFound("server group", group_id)
        return SchedulingRequest.of(spec, self.groups.view(group_id)), (group_id, held[1])

    def _fits(self, state: HostState, request: SchedulingRequest) -> bool:
        """The per-host filters of the current configuration (a claim checked against fresh usage)."""
        config = self.config
        filters = config.chance_filters if config.driver == "chance" else config.filters
        return all(f.host_passes(state, request) is None for f in filters if f.is_relevant(request))

    def _no_valid_host(self, config: EngineConfig, request: SchedulingRequest) -> StratusError:
        """Why no host was chosen. With no compute up at all it is an outage, not a verdict on the
        request (UNAVAILABLE, NO_COMPUTE_UP): the build waits for one until its deadline."""
        filters = config.chance_filters if config.driver == "chance" else config.filters
        run = FilterRun(filters, request)
        states = self.states()
        run.run(states)
        refusal = run.no_valid_host()
        if not any(state.alive for state in states):
            return Unavailable(f"no compute host is up ({refusal.message})", reason="NO_COMPUTE_UP")
        return refusal

    async def _placed_on(self, spec: scheduler_pb2.RequestSpec) -> str:
        """The host the server's record names, when another decision placed it first (a retried
        request): "" if none now. Refused when the request ignores that host: the caller must take
        the server off it first (``services.core.claims.unplace``)."""
        try:
            record, _ = await instances.get(self._store, spec.instance_id)
        except NotFound:
            return ""
        host = record.server.host
        if host in spec.ignore_hosts:
            raise FailedPrecondition(
                f"server {spec.instance_id} is placed on {host}, which this request ignores; take it off first",
                reason="ALREADY_PLACED", metadata={"instance_id": spec.instance_id, "host": host},
            )  # fmt: skip
        return host

    def _held_host(self, spec: scheduler_pb2.RequestSpec) -> str | None:
        """The host a retried request already claimed, unless that host failed it."""
        held = sorted(self.hosts.holders(spec.instance_id) - set(spec.ignore_hosts))
        return held[0] if held else None


def settle_heap() -> None:
    """The caches just loaded hold a few objects per host (1.4 million at 100,000 hosts), each kept
    until replaced and then freed by its reference count (they hold no cycles). A full collection
    walks them all, about 0.3 s at 100,000 hosts, in the middle of decisions: collect once now,
    then freeze what is left, which later full collections skip (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


def claim_for(spec: scheduler_pb2.RequestSpec) -> state_pb2.Claim:
    return state_pb2.Claim(
        instance_id=spec.instance_id,
        project_id=spec.project_id,
        vcpus=spec.resources.vcpus,
        ram_mb=spec.resources.ram_mb,
        disk_gb=spec.resources.disk_gb,
        created_at=_now(),
        flavor_id=spec.flavor_id,
    )


def _now() -> Timestamp:
    ns = time.time_ns()
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def validate(spec: scheduler_pb2.RequestSpec) -> None:
    violations = []
    if not spec.instance_id:
        violations.append(("spec.instance_id", "required"))
    for name in ("vcpus", "ram_mb", "disk_gb"):
        if getattr(spec.resources, name) < 0:
            violations.append((f"spec.resources.{name}", "must not be negative"))
    if violations:
        raise InvalidArgument(violations)


def _response(host: str, others: Sequence[str], alternates: int) -> scheduler_pb2.SelectDestinationsResponse:
    return scheduler_pb2.SelectDestinationsResponse(
        selected=scheduler_pb2.Destination(host=host),
        alternates=[scheduler_pb2.Destination(host=h) for h in others[: max(alternates, 0)]],
    )

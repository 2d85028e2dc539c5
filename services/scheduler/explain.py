"""A dry run of placement: per filter what it removed and why, the ranking, and the host a
create would get now, or the NO_VALID_HOST message it would fail with. Claims nothing."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.chains import EngineConfig
from services.scheduler.engine import Ranking
from services.scheduler.filtering import FilterRun
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from stratus.v1 import placement_pb2

EXAMPLES = 3
TOP_HOSTS = 10


def explanation(
    config: EngineConfig, request: SchedulingRequest, hosts: Sequence[HostState], ranking: Ranking
) -> placement_pb2.PlacementExplanation:
    """``hosts``: every host's state (pending claims counted); ``ranking``: the engine's best."""
    filters = config.chance_filters if config.driver == "chance" else config.filters
    run = FilterRun(filters, request)
    survivors = run.run(hosts)
    out = placement_pb2.PlacementExplanation()
    for outcome in run.outcomes:
        result = out.filters.add(
            filter=outcome.filter.name, hosts_in=outcome.considered, hosts_out=len(outcome.refused)
        )
        result.examples.extend(f"{host.host}: {reason}" for host, reason in outcome.refused[:EXAMPLES])
        if outcome.refused:
            result.summary = outcome.filter.explain(request, outcome.refused)
    for host, weight in list(zip(ranking.hosts, ranking.weights, strict=True))[:TOP_HOSTS]:
        out.hosts.add(host=host, weight=weight)
    if ranking.hosts:
        out.selected_host = ranking.hosts[0]
    elif not survivors:
        error = run.no_valid_host()
        out.message = error.message
        out.metadata.update(error.metadata)
    return out

"""Vectorized versions of the hot filters and weighers, keyed by their names.

Each fast filter returns, over every row of the ``HostTable``, whether the host passes (or None
when it passes them all), exactly as the filter's ``host_passes`` would decide; each fast weigher
returns the raw scores ``weigh`` would give, which ``bounded`` holds within the weigher's bounds
as ``Weigher.score`` does. The per-host classes stay the reference (and the
explanation); a property test holds the two to the same answers. A filter or weigher without an
entry here runs per host, on the hosts the fast filters kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from services.scheduler.filters import Filter, ResourceFilter
from services.scheduler.filters.count_limit import CountLimitFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import Bools, Floats, HostTable
from services.scheduler.weighers import Weigher
from services.scheduler.weighers.cpu import CPUWeigher

# Over the rows given (None: every row [0, size)): which pass, or None when all of them do.
FastFilter = Callable[[Filter, HostTable, SchedulingRequest, "Rows | None"], Bools | None]
# The raw scores over every row, and the sparse column that, when all zero, makes them constant.
FastWeigher = Callable[[Weigher, HostTable, SchedulingRequest], tuple[Floats, str]]
Rows = npt.NDArray[np.intp]

_RESOURCE_COLUMNS = {"RamFilter": "ram", "CoreFilter": "vcpus", "DiskFilter": "disk"}


def _pick(column: npt.NDArray[Any], table: HostTable, rows: Rows | None) -> npt.NDArray[Any]:
    return column[: table.size] if rows is None else column[rows]


def _compute(_f: Filter, table: HostTable, _r: SchedulingRequest, rows: Rows | None) -> Bools:
    return _pick(table.up, table, rows)


def _availability_zone(_f: Filter, table: HostTable, request: SchedulingRequest, rows: Rows | None) -> Bools | None:
    wanted = request.spec.availability_zone
    if not wanted:
        return None
    same: Bools = _pick(table.az, table, rows) == table.az_code(wanted)
    return same


def _resource(f: Filter, table: HostTable, request: SchedulingRequest, rows: Rows | None) -> Bools:
    assert isinstance(f, ResourceFilter)
    resource = _RESOURCE_COLUMNS[f.name]
    capacity = table.capacity(resource, f.ratio, f.ratio_option)
    # total * ratio - (reserved + claimed), as ResourceFilter.free
    free: Floats = _pick(capacity, table, rows) - _pick(table.columns[f"taken_{resource}"], table, rows)
    fits: Bools = free >= f.needed(request)
    return fits


def _all_but(refused: list[int], table: HostTable, rows: Rows | None) -> Bools | None:
    """Every row passes but ``refused``; None when none is refused."""
    if not refused:
        return None
    mask = np.ones(table.size, dtype=np.bool_)
    mask[refused] = False
    return _pick(mask, table, rows)


def _retry(_f: Filter, table: HostTable, request: SchedulingRequest, rows: Rows | None) -> Bools | None:
    return _all_but(table.rows_of(request.spec.ignore_hosts), table, rows)


def _below(column: str, *, sparse: bool = False) -> FastFilter:
    """A CountLimitFilter without aggregates: the count in ``column`` under the option's limit
    (``sparse``: the table tracks the column's non-zero rows, so all-zero needs no comparison)."""

    def below(f: Filter, table: HostTable, _r: SchedulingRequest, rows: Rows | None) -> Bools | None:
        assert isinstance(f, CountLimitFilter)
        if sparse and f.maximum > 0 and table.all_zero(column):
            return None
        fits: Bools = _pick(table.columns[column], table, rows) < f.maximum
        return fits

    return below


def _all_hosts(_f: Filter, _t: HostTable, _r: SchedulingRequest, _rows: Rows | None) -> None:
    return None


def _group_verdicts(f: Filter, table: HostTable, request: SchedulingRequest) -> dict[int, bool]:
    """Row -> passes, by the filter's own host_passes, for the hosts holding group members."""
    verdicts = {}
    for host in request.group_hosts:
        row, state = table.index.get(host), table.state_of(host)
        if row is not None and state is not None:
            verdicts[row] = f.host_passes(state, request) is None
    return verdicts


def _anti_affinity(f: Filter, table: HostTable, request: SchedulingRequest, rows: Rows | None) -> Bools | None:
    """Only a host holding members can be refused (it has as many as the group allows)."""
    return _all_but([row for row, ok in _group_verdicts(f, table, request).items() if not ok], table, rows)


def _affinity(f: Filter, table: HostTable, request: SchedulingRequest, rows: Rows | None) -> Bools:
    """Only a host holding members can pass (once any member is placed)."""
    mask = np.zeros(table.size, dtype=np.bool_)
    mask[[row for row, ok in _group_verdicts(f, table, request).items() if ok]] = True
    return _pick(mask, table, rows)


FAST_FILTERS: dict[str, FastFilter] = {
    "ComputeFilter": _compute,
    "AvailabilityZoneFilter": _availability_zone,
    "RamFilter": _resource,
    "CoreFilter": _resource,
    "DiskFilter": _resource,
    "RetryFilter": _retry,
    "NumInstancesFilter": _below("instances"),
    "IoOpsFilter": _below("io_ops", sparse=True),
    "AllHostsFilter": _all_hosts,
    "ServerGroupAntiAffinityFilter": _anti_affinity,
    "ServerGroupAffinityFilter": _affinity,
}


def _column(name: str, sparse: str = "") -> FastWeigher:
    def weigh(_w: Weigher, table: HostTable, _r: SchedulingRequest) -> tuple[Floats, str]:
        return table.col(name), sparse

    return weigh


def _soft_group(w: Weigher, table: HostTable, request: SchedulingRequest) -> tuple[Floats, str]:
    """The weigher's own score for the hosts holding members; what it gives any other host
    (it depends only on the members there) everywhere else."""
    scores: Floats = np.full(table.size, w.score(HostState(""), request))
    for host in request.group_hosts:
        row, state = table.index.get(host), table.state_of(host)
        if row is not None and state is not None:
            scores[row] = w.score(state, request)
    return scores, ""


def _free_vcpus(w: Weigher, table: HostTable, _r: SchedulingRequest) -> tuple[Floats, str]:
    """total * ratio - (reserved + claimed), as the CoreFilter's free (CPUWeigher.weigh)."""
    assert isinstance(w, CPUWeigher)
    capacity = table.capacity("vcpus", w.core.ratio, w.core.ratio_option)
    free: Floats = capacity - table.col("taken_vcpus")
    return free, ""


FAST_WEIGHERS: dict[str, FastWeigher] = {
    "RamWeigher": _column("free_ram"),
    "CPUWeigher": _free_vcpus,
    "DiskWeigher": _column("free_disk"),
    "IoOpsWeigher": _column("io_ops"),  # no sparse skip: its minval 0 bounds it anyway
    "NumInstancesWeigher": _column("instances"),
    "BuildFailureWeigher": _column("neg_failed_builds", "failed_builds"),
    "ServerGroupSoftAffinityWeigher": _soft_group,
    "ServerGroupSoftAntiAffinityWeigher": _soft_group,
}
# These depend on more of the request than its resources, zone and hosts to avoid (its group).
REQUEST_DEPENDENT = frozenset(
    {
        "ServerGroupAntiAffinityFilter",
        "ServerGroupAffinityFilter",
        "ServerGroupSoftAffinityWeigher",
        "ServerGroupSoftAntiAffinityWeigher",
    }
)


def fast_filter(f: Filter) -> FastFilter | None:
    """The vectorized version of a filter, if there is one."""
    return FAST_FILTERS.get(f.name)


def fast_weigher(w: Weigher) -> FastWeigher | None:
    """The vectorized raw scores of a weigher, before ``bounded``."""
    return FAST_WEIGHERS.get(w.name)


def bounded(w: Weigher, scores: Floats) -> Floats:
    """Scores held within the weigher's ``minval``/``maxval``, as ``Weigher.score`` holds them
    (a copy when they move; take the rows you need first)."""
    if w.minval is None and w.maxval is None:
        return scores
    clipped: Floats = np.clip(scores, w.minval, w.maxval)
    return clipped

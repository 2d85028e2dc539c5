"""The scheduling core: which hosts pass, how they weigh, and the best few, over a ``HostTable``.

Filters and weighers with a vectorized version (``fast.py``) run as array operations over every
host; the others run per host, only on the hosts the fast filters kept, and only when they are
relevant to the request. Weights are normalised and summed exactly as ``weigh_hosts`` does; ties
go to the host name. Pure: no I/O, no claims.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.scheduler.chains import EngineConfig
from services.scheduler.fast import bounded, fast_filter, fast_weigher
from services.scheduler.filters import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import Floats, HostTable
from services.scheduler.views import Views
from services.scheduler.weighers import Weigher

Rows = npt.NDArray[np.intp]
StateOf = Callable[[str], HostState | None]


@dataclass(frozen=True, slots=True)
class Ranking:
    """The best hosts, best first, with their weights; ``passed`` hosts passed every filter."""

    hosts: list[str]
    weights: list[float]
    passed: int

    def __bool__(self) -> bool:
        return bool(self.hosts)


class Engine:
    def __init__(self, table: HostTable, state_of: StateOf, rng: random.Random | None = None) -> None:
        self.table = table
        # The host's state with this scheduler's pending claims counted (for per-host filters).
        self._state_of = state_of
        table.state_of = state_of
        self._rng = rng or random.Random()
        self._views = Views(table)
        # Keep the filter mask and weights of each request shape between decisions (views.py).
        self.incremental = True

    # ---- filtering --------------------------------------------------------------------------
    def passing_rows(self, filters: Sequence[Filter], request: SchedulingRequest) -> Rows:
        """Rows of the hosts that pass every filter, in row order."""
        table = self.table
        mask = table.present[: table.size].copy()
        slow: list[Filter] = []
        for f in filters:
            if not f.is_relevant(request):
                continue
            fast = fast_filter(f)
            if fast is None:
                slow.append(f)
                continue
            passing = fast(f, table, request, None)
            if passing is not None:
                np.logical_and(mask, passing, out=mask)
        rows: Rows = np.flatnonzero(mask)
        if slow and len(rows):
            rows = self._slow_filter(rows, slow, request)
        return rows

    def _slow_filter(self, rows: Rows, filters: Sequence[Filter], request: SchedulingRequest) -> Rows:
        names, kept = self.table.names, []
        for row in rows.tolist():
            state = self._state_of(names[row])
            if state is not None and all(f.host_passes(state, request) is None for f in filters):
                kept.append(row)
        return np.array(kept, dtype=np.intp)

    # ---- weighing ---------------------------------------------------------------------------
    def weigh(self, weighers: Sequence[Weigher], request: SchedulingRequest, rows: Rows) -> Floats:
        """Total weight per row of ``rows``: each weigher normalised to 0..1, times its multiplier
        (the same operations, in the same order, as ``weigh_hosts``)."""
        totals: Floats = np.zeros(len(rows))
        if len(rows) == 0:
            return totals
        every = len(rows) == self.table.size  # all rows pass: columns need no gathering
        scratch: Floats = np.empty(len(rows))
        for w in weighers:
            if not w.is_relevant(request):
                continue
            multiplier = self._multiplier(w, rows)
            if isinstance(multiplier, float) and multiplier == 0.0:
                continue  # adds 0.0 to every host
            raw = self._raw(w, request, rows, every)
            if raw is None:
                continue
            low = float(raw.min()) if w.minval is None else w.minval
            high = float(raw.max()) if w.maxval is None else w.maxval
            if high == low:
                continue  # normalised to all zeros
            np.subtract(raw, low, out=scratch)
            np.divide(scratch, high - low, out=scratch)
            np.multiply(multiplier, scratch, out=scratch)
            np.add(totals, scratch, out=totals)
        return totals

    def _multiplier(self, w: Weigher, rows: Rows) -> float | Floats:
        overrides = self.table.aggregate_column(w.multiplier_option) if w.multiplier_option else None
        if overrides is None:
            return float(w.multiplier)
        picked = overrides[rows] if len(rows) != len(overrides) else overrides
        return np.where(np.isnan(picked), float(w.multiplier), picked)

    def _raw(self, w: Weigher, request: SchedulingRequest, rows: Rows, every: bool) -> Floats | None:
        """Raw scores of ``rows``; None when they are all equal and normalise to zero anyway."""
        fast = fast_weigher(w)
        if fast is not None:
            column, sparse = fast(w, self.table, request)
            if sparse and w.minval is None and w.maxval is None and self.table.all_zero(sparse):
                return None
            return bounded(w, column if every else column[rows])
        names = self.table.names
        scores = []
        for row in rows.tolist():
            state = self._state_of(names[row])
            scores.append(w.score(state, request) if state is not None else 0.0)
        return np.array(scores, dtype=np.float64)

    # ---- choosing ---------------------------------------------------------------------------
    def rank(self, config: EngineConfig, request: SchedulingRequest, limit: int) -> Ranking:
        """The ``limit`` best hosts for the request, best first (filter driver), or ``limit``
        random hosts with room (chance driver)."""
        if config.driver == "chance":
            return self._chance(config, request, limit)
        if self.incremental:
            view = self._views.lookup(config, request)
            if view is not None:
                best, weights = self._views.best(view, limit)
                return Ranking([self.table.names[r] for r in best], weights, view.count)
        rows = self.passing_rows(config.filters, request)
        totals = self.weigh(config.weighers, request, rows)
        return self._best(rows, totals, limit, len(rows))

    def _best(self, rows: Rows | None, totals: Floats, limit: int, passed: int) -> Ranking:
        """The ``limit`` best of ``rows`` (None: every row)."""
        k = min(max(limit, 1), passed)
        if k == 0:
            return Ranking([], [], 0)
        count = len(totals)
        if count > k:
            threshold = np.partition(totals, count - k)[count - k]
            candidates = np.flatnonzero(totals >= threshold)  # the k best and any ties with the k-th
        else:
            candidates = np.arange(count)
        at = candidates if rows is None else rows[candidates]
        order = np.lexsort((self.table.rank()[at], -totals[candidates]))[:k]
        names = self.table.names
        return Ranking([names[r] for r in at[order].tolist()], totals[candidates[order]].tolist(), passed)

    def _chance(self, config: EngineConfig, request: SchedulingRequest, limit: int) -> Ranking:
        rows = self.passing_rows(config.chance_filters, request)
        k = min(max(limit, 1), len(rows))
        picked = self._rng.sample(rows.tolist(), k)
        return Ranking([self.table.names[r] for r in picked], [0.0] * k, len(rows))

    def pick(self, ranking: Ranking, subset_size: int) -> tuple[str, list[str]]:
        """The chosen host (at random among the best ``subset_size``) and the others in order."""
        index = self._rng.randrange(min(max(subset_size, 1), len(ranking.hosts)))
        hosts = ranking.hosts
        return hosts[index], hosts[:index] + hosts[index + 1 :]

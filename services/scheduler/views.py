"""Incremental ranking: the filter mask and weights of one request shape, kept between decisions.

Consecutive decisions for requests of the same shape (same resources, zone, hosts to avoid,
and only vectorized filters and weighers relevant) differ only in the few hosts that changed
since: the claims just made. A ``View`` keeps, over every row of the ``HostTable``, which hosts
pass, each weigher's raw scores and its normalisation bounds, and the total weights. A decision
re-evaluates only the rows the table logged as changed; when a weigher's bounds move (the host
at the top or bottom changed) the totals are recomputed from the kept scores. Every number is
computed with the same operations as a full pass, so the ranking is identical to one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from services.scheduler.chains import EngineConfig
from services.scheduler.fast import (
    REQUEST_DEPENDENT,
    FastFilter,
    FastWeigher,
    Rows,
    bounded,
    fast_filter,
    fast_weigher,
)
from services.scheduler.filters import Filter
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import Bools, Floats, HostTable
from services.scheduler.weighers import Weigher

MAX_VIEWS = 16
SHORTLIST = 64


@dataclass(eq=False)
class _Weighing:
    weigher: Weigher
    fast: FastWeigher
    multiplier: float | Floats  # per row where aggregates override it
    raw: Floats  # a copy: the table's column changes under it
    low: float
    high: float


@dataclass(eq=False)
class View:
    config: EngineConfig
    filters: list[tuple[Filter, FastFilter]]
    weighers: list[tuple[Weigher, FastWeigher]]
    version: tuple[int, int] = (-1, 0)
    sparse: tuple[bool, ...] = ()
    mask: Bools | None = None
    count: int = 0
    weighings: tuple[_Weighing, ...] = ()
    totals: Floats | None = None  # -inf where the host does not pass
    sparse_columns: tuple[str, ...] = ()
    # Rows that may be among the best: every other row's total is below ``floor``.
    shortlist: set[int] = field(default_factory=set)
    floor: float = -np.inf


class Views:
    def __init__(self, table: HostTable) -> None:
        self.table = table
        self._views: OrderedDict[Hashable, View] = OrderedDict()

    def lookup(self, config: EngineConfig, request: SchedulingRequest) -> View | None:
        """The request's view, current with the table; None when it needs the full path."""
        filters = [(f, fast_filter(f)) for f in config.filters if f.is_relevant(request)]
        weighers = [(w, fast_weigher(w)) for w in config.weighers if w.is_relevant(request)]
        if any(fast is None or f.name in REQUEST_DEPENDENT for f, fast in filters) or any(
            fast is None or w.name in REQUEST_DEPENDENT for w, fast in weighers
        ):
            return None  # a per-host or group filter or weigher is in play
        spec = request.spec
        key = (
            id(config), spec.resources.vcpus, spec.resources.ram_mb, spec.resources.disk_gb,
            spec.availability_zone, tuple(sorted(spec.ignore_hosts)),
            tuple(id(f) for f, _ in filters), tuple(id(w) for w, _ in weighers),
        )  # fmt: skip
        view = self._views.get(key)
        if view is None or view.config is not config:
            view = View(config, [(f, g) for f, g in filters if g], [(w, g) for w, g in weighers if g])
            view.sparse_columns = tuple(s for w, g in view.weighers if (s := g(w, self.table, request)[1]))
            self._views[key] = view
            while len(self._views) > MAX_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(key)
        self._refresh(view, request)
        return view

    # ---- keeping a view current -------------------------------------------------------------
    def _refresh(self, view: View, request: SchedulingRequest) -> None:
        table = self.table
        changed = table.changes_since(view.version)
        sparse = tuple(table.all_zero(column) for column in view.sparse_columns)
        if changed is None or sparse != view.sparse or view.mask is None or view.count == 0:
            self._build(view, request)
        elif changed:
            if len(changed) > max(64, table.size // 8):
                self._build(view, request)
            else:
                self._update(view, request, np.fromiter(sorted(changed), dtype=np.intp, count=len(changed)))
        view.version, view.sparse = table.version, sparse

    def _build(self, view: View, request: SchedulingRequest) -> None:
        table = self.table
        mask = table.present[: table.size].copy()
        for f, fast_f in view.filters:
            passing = fast_f(f, table, request, None)
            if passing is not None:
                np.logical_and(mask, passing, out=mask)
        view.mask, view.count = mask, int(np.count_nonzero(mask))
        weighings = []
        for w, fast in view.weighers:
            multiplier = self._multiplier(w)
            if isinstance(multiplier, float) and multiplier == 0.0:
                continue  # adds 0.0 to every host
            column, sparse = fast(w, table, request)
            if sparse and w.minval is None and w.maxval is None and table.all_zero(sparse):
                continue  # every host scores 0: normalised to all zeros
            raw = bounded(w, column)
            if raw is column:  # kept between decisions, while the table's column changes
                raw = column.copy()
            low, high = self._bounds(w, raw, mask)
            weighings.append(_Weighing(w, fast, multiplier, raw, low, high))
        view.weighings = tuple(weighings)
        view.totals = self._totals(view)
        view.shortlist.clear()

    def _multiplier(self, w: Weigher) -> float | Floats:
        overrides = self.table.aggregate_column(w.multiplier_option) if w.multiplier_option else None
        if overrides is None:
            return float(w.multiplier)
        return np.where(np.isnan(overrides), float(w.multiplier), overrides)

    @staticmethod
    def _bounds(w: Weigher, raw: Floats, mask: Bools) -> tuple[float, float]:
        low = float(raw.min(where=mask, initial=np.inf)) if w.minval is None else w.minval
        high = float(raw.max(where=mask, initial=-np.inf)) if w.maxval is None else w.maxval
        return low, high

    def _totals(self, view: View) -> Floats:
        """Every row's weight as ``Engine.weigh`` computes it; -inf where the host does not pass."""
        assert view.mask is not None
        totals: Floats = np.zeros(len(view.mask))
        if view.count == 0:
            totals.fill(-np.inf)
            return totals
        scratch: Floats = np.empty(len(view.mask))
        for wg in view.weighings:
            if wg.high == wg.low:
                continue
            np.subtract(wg.raw, wg.low, out=scratch)
            np.divide(scratch, wg.high - wg.low, out=scratch)
            np.multiply(wg.multiplier, scratch, out=scratch)
            np.add(totals, scratch, out=totals)
        np.copyto(totals, -np.inf, where=~view.mask)
        return totals

    def _update(self, view: View, request: SchedulingRequest, rows: Rows) -> None:
        """Re-evaluates ``rows`` only (a few: plain Python floats are quicker than numpy calls
        there, and give the same results); all the totals when a weigher's bounds moved."""
        table, mask, totals = self.table, view.mask, view.totals
        assert mask is not None and totals is not None
        passing = table.present[rows].copy()
        for f, fast in view.filters:
            ok = fast(f, table, request, rows)
            if ok is not None:
                np.logical_and(passing, ok, out=passing)
        was: list[bool] = mask[rows].tolist()
        now: list[bool] = passing.tolist()
        mask[rows] = passing
        view.count += sum(now) - sum(was)
        if view.count == 0:
            return  # the next lookup rebuilds
        moved = False
        scores: list[list[float]] = []
        for wg in view.weighings:
            after = bounded(wg.weigher, wg.fast(wg.weigher, table, request)[0][rows])
            before: list[float] = wg.raw[rows].tolist()
            wg.raw[rows] = after
            values: list[float] = after.tolist()
            scores.append(values)
            gone = [v for v, ok in zip(before, was, strict=True) if ok]
            new = [v for v, ok in zip(values, now, strict=True) if ok]
            bounds = self._moved_bounds(wg, gone, new, mask)
            if bounds != (wg.low, wg.high):
                wg.low, wg.high = bounds
                moved = True
        if moved:
            view.totals = self._totals(view)
            view.shortlist.clear()
            return
        for i, row in enumerate(rows.tolist()):
            total = 0.0
            for wg, values in zip(view.weighings, scores, strict=True):
                if wg.high != wg.low:
                    m = wg.multiplier if isinstance(wg.multiplier, float) else float(wg.multiplier[row])
                    total += m * ((values[i] - wg.low) / (wg.high - wg.low))
            totals[row] = total if now[i] else -np.inf
            if now[i] and total >= view.floor:
                view.shortlist.add(row)

    def _moved_bounds(self, wg: _Weighing, gone: list[float], new: list[float], mask: Bools) -> tuple[float, float]:
        """The weigher's bounds over the passing hosts after ``gone`` values (of hosts that
        passed) were replaced by ``new`` ones (of hosts that pass now)."""
        w, low, high = wg.weigher, wg.low, wg.high
        if w.minval is not None and w.maxval is not None:
            return low, high
        if any(v in (low, high) for v in gone):
            return self._bounds(w, wg.raw, mask)  # an extreme may have left: look at every host
        if new:
            low = low if w.minval is not None else min(low, *new)
            high = high if w.maxval is not None else max(high, *new)
        return low, high

    # ---- the best rows ----------------------------------------------------------------------
    def best(self, view: View, limit: int) -> tuple[list[int], list[float]]:
        """The ``limit`` best passing rows (ties to the lower host name) and their weights."""
        k = min(max(limit, 1), view.count)
        if k == 0:
            return [], []
        if not view.shortlist or len(view.shortlist) > 4 * max(SHORTLIST, limit):
            self._shortlist(view, limit)
        picked = self._pick(view, k)
        if picked is None:  # the shortlist no longer holds the best k: build it again
            self._shortlist(view, limit)
            picked = self._pick(view, k)
            assert picked is not None
        return picked

    def _shortlist(self, view: View, limit: int) -> None:
        totals = view.totals
        assert totals is not None
        size = max(SHORTLIST, 4 * limit)
        if view.count <= size:
            view.floor = -np.inf
            view.shortlist = set(np.flatnonzero(totals > -np.inf).tolist())
            return
        n = len(totals)
        view.floor = float(np.partition(totals, n - size)[n - size])
        view.shortlist = set(np.flatnonzero(totals >= view.floor).tolist())

    def _pick(self, view: View, k: int) -> tuple[list[int], list[float]] | None:
        assert view.totals is not None
        rows = np.fromiter(view.shortlist, dtype=np.intp, count=len(view.shortlist))
        totals = view.totals[rows]
        keep = totals > -np.inf
        rows, totals = rows[keep], totals[keep]
        order = np.lexsort((self.table.rank()[rows], -totals))[:k]
        if len(order) < k or totals[order[-1]] < view.floor:
            return None  # a row outside the shortlist might beat the k-th
        return rows[order].tolist(), totals[order].tolist()

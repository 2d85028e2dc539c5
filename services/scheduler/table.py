"""Every host as one row of a struct of numpy arrays, kept current from the host state cache.

The fast path filters and weighs all hosts with a handful of array operations instead of a
Python call per host. Rows are updated one at a time as the cache changes (a claim, a watch
event) and as this scheduler's own claims are pre-applied (``set_pending``). Every number is kept
exactly as the per-host code computes it (integers held as float64, sums done in integers), so
both paths agree to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from services.core.claims import Totals
from services.scheduler.host_state import NO_TOTALS, HostState

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

RESOURCES = ("vcpus", "ram", "disk")
MAX_LOG = 4096
_FLOAT_COLUMNS = (
    *(f"total_{r}" for r in RESOURCES),
    *(f"taken_{r}" for r in RESOURCES),  # reserved + used + pending
    *(f"free_{r}" for r in RESOURCES),  # total - taken
    "instances",
    "io_ops",
    "failed_builds",
    "neg_failed_builds",
)


def _no_state(_host: str) -> HostState | None:
    return None


class HostTable:
    def __init__(self, capacity: int = 256) -> None:
        # A host's state with pending claims, for the few per-host checks of the fast path.
        self.state_of: Callable[[str], HostState | None] = _no_state
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self._free_rows: list[int] = []
        self._capacity = 0
        self.present: Bools = np.zeros(0, dtype=np.bool_)
        self.up: Bools = np.zeros(0, dtype=np.bool_)
        self.az: Ints = np.zeros(0, dtype=np.int64)
        self.columns: dict[str, Floats] = {}
        self._az_codes: dict[str, int] = {}
        # row -> {aggregate metadata key: smallest numeric value}, for rows in any aggregate.
        self._agg_numbers: dict[int, dict[str, float]] = {}
        self._agg_columns: dict[str, tuple[tuple[int, int], Floats | None]] = {}
        self._capacity_cache: dict[tuple[str, float, str], tuple[tuple[int, int], Floats]] = {}
        self._rank: Ints | None = None
        # Per row, what its static columns were last built from (identity, to skip rebuilding them).
        self._seen: dict[int, tuple[object, ...]] = {}
        # Per row, in Python: totals; reserved + used per resource, and instances; pending claims.
        self._total: dict[int, tuple[int, int, int]] = {}
        self._base: dict[int, tuple[int, int, int, int]] = {}
        self._pend: dict[int, Totals] = {}
        # Rows changed since the last structural change (see ``changes_since``).
        self.epoch = 0
        self._log: list[int] = []
        self._log_start = 0
        # Rows with a non-zero value, per sparse column: an all-zero column weighs nothing.
        self._nonzero: dict[str, set[int]] = {"io_ops": set(), "failed_builds": set()}
        self._grow(capacity)

    # ---- shape ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Rows in use so far (some may be free: see ``present``)."""
        return len(self.names)

    def __len__(self) -> int:
        return len(self.index)

    def col(self, name: str) -> Floats:
        return self.columns[name][: self.size]

    def _grow(self, capacity: int) -> None:
        def grown(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
            out = np.zeros(capacity, dtype=a.dtype)
            out[: len(a)] = a
            return out

        self.present = grown(self.present).astype(np.bool_)
        self.up = grown(self.up).astype(np.bool_)
        self.az = grown(self.az).astype(np.int64)
        for name in _FLOAT_COLUMNS:
            self.columns[name] = grown(self.columns.get(name, np.zeros(0))).astype(np.float64)
        self._capacity = capacity

    def _row_for(self, name: str) -> int:
        row = self.index.get(name)
        if row is not None:
            return row
        if self._free_rows:
            row = self._free_rows.pop()
            self.names[row] = name
        else:
            row = len(self.names)
            if row >= self._capacity:
                self._grow(max(2 * self._capacity, 256))
            self.names.append(name)
        self.index[name] = row
        self.present[row] = True
        self._rank = None
        self._structural()
        return row

    # ---- updates ----------------------------------------------------------------------------
    def update(self, name: str, state: HostState | None) -> None:
        """The host's row from its state (None: the host is gone). Pending claims are kept."""
        if state is None:
            self._remove(name)
            return
        row = self._row_for(name)
        caps, used = state.capabilities, state.used
        self._base[row] = (
            caps.reserved_vcpus + used.vcpus,
            caps.reserved_ram_mb + used.ram_mb,
            caps.reserved_disk_gb + used.disk_gb,
            used.instances,
        )
        seen = (caps, state.stats, state.aggregates, state.alive, state.enabled, state.forced_down)
        if self._seen.get(row) != seen:  # more than the usage changed (a claim is the common case)
            self._seen[row] = seen
            self._set_static(row, state)
        self._set_sparse("io_ops", row, state.io_ops)  # the stats, and the builds claimed since
        self._derive(row)

    def _set_static(self, row: int, state: HostState) -> None:
        caps, c = state.capabilities, self.columns
        totals = (caps.vcpus, caps.ram_mb, caps.disk_gb)
        if self._total.get(row) != totals:
            self._total[row] = totals
            self._structural()
            for r, total in zip(RESOURCES, totals, strict=True):
                c[f"total_{r}"][row] = total
        self._set_sparse("failed_builds", row, state.stats.failed_builds)
        c["neg_failed_builds"][row] = -float(state.stats.failed_builds)
        self.up[row] = state.alive and state.enabled and not state.forced_down and not caps.degraded_reason
        self.az[row] = self._az_codes.setdefault(state.availability_zone, len(self._az_codes))
        self._set_aggregates(row, state)

    def set_pending(self, name: str, pending: Totals) -> None:
        """This scheduler's unconfirmed claims on the host (replacing the previous amount)."""
        row = self.index.get(name)
        if row is None:
            return
        self._pend[row] = pending
        self._derive(row)

    def pending(self, name: str) -> Totals:
        row = self.index.get(name)
        return self._pend.get(row, NO_TOTALS) if row is not None else NO_TOTALS

    def _derive(self, row: int) -> None:
        """taken = reserved + used + pending and free = total - taken, in integers (exact in
        float64), as HostState computes them."""
        c, base, pend = self.columns, self._base[row], self._pend.get(row, NO_TOTALS)
        total = self._total[row]
        taken_vcpus, taken_ram, taken_disk = base[0] + pend.vcpus, base[1] + pend.ram_mb, base[2] + pend.disk_gb
        c["taken_vcpus"][row], c["free_vcpus"][row] = taken_vcpus, total[0] - taken_vcpus
        c["taken_ram"][row], c["free_ram"][row] = taken_ram, total[1] - taken_ram
        c["taken_disk"][row], c["free_disk"][row] = taken_disk, total[2] - taken_disk
        c["instances"][row] = base[3] + pend.instances
        self._changed(row)

    # ---- change tracking --------------------------------------------------------------------
    def _changed(self, row: int) -> None:
        self._log.append(row)
        if len(self._log) > MAX_LOG:
            self._structural()

    def _structural(self) -> None:
        """Whole columns changed (rows added or removed, totals, aggregates): no incremental view."""
        self.epoch += 1
        self._log_start += len(self._log)
        self._log = []

    @property
    def version(self) -> tuple[int, int]:
        """(epoch, position in the change log) now."""
        return self.epoch, self._log_start + len(self._log)

    def changes_since(self, version: tuple[int, int]) -> set[int] | None:
        """Rows changed since ``version``; None when whole columns may have changed."""
        epoch, position = version
        if epoch != self.epoch or position < self._log_start:
            return None
        return set(self._log[position - self._log_start :])

    def _set_sparse(self, column: str, row: int, value: int) -> None:
        self.columns[column][row] = value
        if value:
            self._nonzero[column].add(row)
        else:
            self._nonzero[column].discard(row)

    def all_zero(self, column: str) -> bool:
        """True when every row holds 0 in a column tracked as sparse (io_ops, failed_builds)."""
        return not self._nonzero[column]

    def _set_aggregates(self, row: int, state: HostState) -> None:
        numbers: dict[str, float] = {}
        for aggregate in state.aggregates:
            for key, raw in aggregate.metadata.items():
                try:
                    value = float(raw)
                except ValueError:
                    continue
                numbers[key] = min(value, numbers.get(key, math.inf))
        if numbers != self._agg_numbers.get(row, {}):
            if numbers:
                self._agg_numbers[row] = numbers
            else:
                self._agg_numbers.pop(row, None)
            self._structural()

    def _remove(self, name: str) -> None:
        row = self.index.pop(name, None)
        if row is None:
            return
        self.present[row] = False
        self.up[row] = False
        for held in (self._seen, self._total, self._base, self._pend, self._agg_numbers):
            held.pop(row, None)
        for column in self.columns.values():
            column[row] = 0.0
        for rows in self._nonzero.values():
            rows.discard(row)
        self.names[row] = ""
        self._free_rows.append(row)
        self._rank = None
        self._structural()

    # ---- derived columns --------------------------------------------------------------------
    def az_code(self, zone: str) -> int:
        """The code of an availability zone; -1 when no host is in it."""
        return self._az_codes.get(zone, -1)

    def aggregate_column(self, key: str) -> Floats | None:
        """Per row, the smallest numeric value of an aggregate metadata key (NaN where none);
        None when no host's aggregates set it."""
        cached = self._agg_columns.get(key)
        if cached is not None and cached[0] == (self.epoch, self.size):
            return cached[1]
        column: Floats | None = None
        for row, numbers in self._agg_numbers.items():
            if key in numbers:
                if column is None:
                    column = np.full(self.size, np.nan)
                column[row] = numbers[key]
        self._agg_columns[key] = ((self.epoch, self.size), column)
        return column

    def capacity(self, resource: str, ratio: float, option: str) -> Floats:
        """total * allocation ratio per row; the ratio is the aggregates' ``option`` where set."""
        key = (resource, ratio, option)
        generation = (self.epoch, self.size)
        cached = self._capacity_cache.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        ratios = self.aggregate_column(option)
        effective = ratio if ratios is None else np.where(np.isnan(ratios), ratio, ratios)
        capacity: Floats = self.col(f"total_{resource}") * effective
        self._capacity_cache[key] = (generation, capacity)
        return capacity

    def rank(self) -> Ints:
        """Per row, its position in host name order (ties in weight go to the lower name)."""
        if self._rank is None or len(self._rank) != self.size:
            rank = np.zeros(self.size, dtype=np.int64)
            for position, row in enumerate(sorted(range(self.size), key=self.names.__getitem__)):
                rank[row] = position
            self._rank = rank
        return self._rank

    def rows_of(self, names: Iterable[str]) -> list[int]:
        return [row for row in (self.index.get(n) for n in names) if row is not None]

"""What the scheduler knows about each compute host, kept current by etcd watches.

``HostState`` is an immutable snapshot of one host: what it offers (its capabilities), what is
claimed on it (its usage, and the mod revision that usage was read at, which a claim must
compare against), and whether it may take work (alive, enabled, not forced down; and, in its
capabilities, not degraded: its hypervisor answers). Filters and weighers see only snapshots, so
they stay pure.

``HostStateCache`` builds the snapshots from four watched prefixes: ``hosts/`` (capabilities and
usage), ``services/compute/`` (the liveness key: only whether it exists), ``services_admin/compute/``
(the operator's choice) and ``aggregates/``. At start they load side by side, page by page, and
each host's snapshot is built once when all have loaded (100,000 hosts: see bench/README.md).
The cache may lag etcd by a watch round trip; that only costs a lost compare-and-swap, after
which ``refresh_usage`` reads the host's usage straight from etcd.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from services.core import claims, keys
from services.core.claims import Totals
from services.core.etcd import Store
from services.core.watchcache import Entry, PrefixCache
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, services_pb2

COMPUTE = "compute"
NO_TOTALS = Totals()
# Called with (host, its new state or None when it is gone) after every change the cache sees.
StateListener = Callable[[str, "HostState | None"], None]


def usage_totals(usage: state_pb2.HostUsage) -> Totals:
    """What the claims add up to (as ``claims.totals``, in one pass)."""
    vcpus = ram_mb = disk_gb = 0
    claims = usage.claims
    for claim in map(claims.__getitem__, claims):  # twice as quick as claims.values() (a Python view)
        vcpus += claim.vcpus
        ram_mb += claim.ram_mb
        disk_gb += claim.disk_gb
    return Totals(vcpus, ram_mb, disk_gb, len(claims))


def add_totals(a: Totals, b: Totals) -> Totals:
    if b == NO_TOTALS:
        return a
    return Totals(a.vcpus + b.vcpus, a.ram_mb + b.ram_mb, a.disk_gb + b.disk_gb, a.instances + b.instances)


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    capabilities: state_pb2.HostCapabilities = field(default_factory=state_pb2.HostCapabilities)
    usage: state_pb2.HostUsage = field(default_factory=state_pb2.HostUsage)
    usage_revision: int = 0
    alive: bool = True
    enabled: bool = True
    forced_down: bool = False
    disabled_reason: str = ""
    stats: state_pb2.HostStats = field(default_factory=state_pb2.HostStats)
    # The aggregates the host is in, by id order.
    aggregates: tuple[aggregates_pb2.Aggregate, ...] = ()
    # Claims this scheduler has decided on but etcd has not confirmed yet (optimistic).
    pending: Totals = NO_TOTALS
    # Instances claimed here since the compute last published its stats: builds it has not
    # reported yet, each counted as one more I/O-heavy task (Nova counts the host it just chose
    # the same way), so a burst of creates spreads instead of piling onto one host.
    unreported: frozenset[str] = frozenset()
    # What the claims in ``usage`` add up to.
    used: Totals = field(init=False)
    # used + pending: what filters and weighers count as taken.
    claimed: Totals = field(init=False)
    instance_ids: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        used = usage_totals(self.usage)
        object.__setattr__(self, "used", used)
        object.__setattr__(self, "claimed", add_totals(used, self.pending))
        object.__setattr__(self, "instance_ids", frozenset(self.usage.claims))

    # free = total - reserved - claimed, before any allocation ratio (the filters apply those).
    @property
    def free_ram_mb(self) -> int:
        return self.capabilities.ram_mb - (self.capabilities.reserved_ram_mb + self.claimed.ram_mb)

    @property
    def free_vcpus(self) -> int:
        return self.capabilities.vcpus - (self.capabilities.reserved_vcpus + self.claimed.vcpus)

    @property
    def free_disk_gb(self) -> int:
        return self.capabilities.disk_gb - (self.capabilities.reserved_disk_gb + self.claimed.disk_gb)

    @property
    def availability_zone(self) -> str:
        """An aggregate's availability_zone wins over the zone the compute reports (as in Nova)."""
        zones = self.aggregate_values("availability_zone")
        return zones[0] if zones else self.capabilities.availability_zone

    @property
    def num_instances(self) -> int:
        return self.claimed.instances

    @property
    def io_ops(self) -> int:
        return self.stats.io_ops + len(self.unreported)

    def aggregate_values(self, key: str) -> list[str]:
        """The values of one metadata key over the host's aggregates (Nova's aggregate_values_from_key)."""
        return [a.metadata[key] for a in self.aggregates if key in a.metadata]

    def aggregate_number(self, key: str) -> float | None:
        """The smallest numeric value of a metadata key over the host's aggregates (Nova's
        ``validate_num_values(..., based_on=min)``); None when none sets a number."""
        values: list[float] = []
        for raw in self.aggregate_values(key):
            try:
                values.append(float(raw))
            except ValueError:
                continue  # an operator's typo in metadata is ignored, as Nova does
        return min(values) if values else None

    def with_usage(
        self, usage: state_pb2.HostUsage, revision: int, pending: Totals = NO_TOTALS, *, track: bool = False
    ) -> HostState:
        """This snapshot with another usage record (read at ``revision``) and pending claims;
        with ``track``, the claims new in it count as unreported builds."""
        unreported = self.unreported
        if track or unreported:
            now = usage.claims.keys()
            new = now - self.instance_ids if track else set()
            unreported = frozenset((unreported & now) | new)
        return HostState(
            self.host, self.capabilities, usage, revision, self.alive, self.enabled,
            self.forced_down, self.disabled_reason, self.stats, self.aggregates, pending, unreported,
        )  # fmt: skip

    def with_pending(self, pending: Totals) -> HostState:
        """This snapshot with ``pending`` claims counted as taken."""
        if pending == self.pending:
            return self
        return HostState(
            self.host, self.capabilities, self.usage, self.usage_revision, self.alive, self.enabled,
            self.forced_down, self.disabled_reason, self.stats, self.aggregates, pending, self.unreported,
        )  # fmt: skip


def _present(_value: bytes) -> bool:
    return True


class HostStateCache:
    """Every compute host that reports capabilities, as ``HostState``, plus instance → hosts."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._hosts: PrefixCache[bytes] = PrefixCache(store, keys.HOSTS, bytes)
        # Only whether a compute's liveness key exists counts: its record is not decoded or kept.
        self._services: PrefixCache[bool] = PrefixCache(store, keys.service(COMPUTE, ""), _present)
        self._admin: PrefixCache[state_pb2.ServiceAdmin] = PrefixCache(
            store, keys.service_admin(COMPUTE, ""), state_pb2.ServiceAdmin.FromString
        )
        self._aggregates: PrefixCache[aggregates_pb2.Aggregate] = PrefixCache(
            store, keys.AGGREGATES, aggregates_pb2.Aggregate.FromString
        )
        self._stats: dict[str, state_pb2.HostStats] = {}
        self._host_aggregates: dict[str, tuple[aggregates_pb2.Aggregate, ...]] = {}
        self._capabilities: dict[str, state_pb2.HostCapabilities] = {}
        self._usage: dict[str, tuple[state_pb2.HostUsage, int]] = {}
        self._states: dict[str, HostState] = {}
        self._holders: dict[str, set[str]] = {}
        self._listeners: list[StateListener] = []
        # While the caches load: the hosts whose state is to be built once they all have (else None).
        self._loading: set[str] | None = None
        self._hosts.subscribe(self._on_host_key)
        self._services.subscribe(self._on_service_key)
        self._admin.subscribe(self._on_service_key)
        self._aggregates.subscribe(self._on_aggregate_key)

    async def start(self) -> None:
        """Loads the four prefixes side by side (each page by page, then watched from its revision),
        then builds each host's state once, in host name order."""
        self._loading = set()
        try:
            await asyncio.gather(
                self._services.start(), self._admin.start(), self._aggregates.start(), self._hosts.start()
            )
        finally:
            loaded, self._loading = self._loading, None
        for host in sorted(loaded):
            self._rebuild(host)

    async def stop(self) -> None:
        await asyncio.gather(self._hosts.stop(), self._services.stop(), self._admin.stop(), self._aggregates.stop())

    def listen(self, listener: StateListener) -> None:
        """Calls ``listener(host, state or None)`` after every change of a host's state."""
        self._listeners.append(listener)

    # ---- reads ------------------------------------------------------------------------------
    def hosts(self) -> list[HostState]:
        """Snapshots of every host with capabilities, in host name order."""
        return [self._states[h] for h in sorted(self._states)]

    def get(self, host: str) -> HostState | None:
        return self._states.get(host)

    def holders(self, instance_id: str) -> set[str]:
        """Hosts that hold a claim for the instance (two during a migration or resize)."""
        return set(self._holders.get(instance_id, ()))

    def usage_of(self, host: str) -> tuple[state_pb2.HostUsage, int]:
        """The host's usage as last seen, and the mod revision it was read at (0: no record)."""
        return self._usage.get(host, (state_pb2.HostUsage(), 0))

    async def refresh_usage(self, host: str) -> HostState | None:
        """Reads the host's usage from etcd (after a lost race); the host's fresh state, if any."""
        usage, revision = await claims.read_usage(self._store, host)
        self._set_usage(host, usage, revision)
        return self._states.get(host)

    def apply_usage(self, host: str, usage: state_pb2.HostUsage, revision: int) -> None:
        """Records a usage known to be in etcd at ``revision`` (written or read by this process),
        ahead of its watch event; an older revision than the one held is ignored."""
        self._set_usage(host, usage, revision)

    def forget_usage(self, host: str) -> None:
        """The host's usage record is gone from etcd (as a read showed)."""
        self._set_usage(host, state_pb2.HostUsage(), 0, force=True)

    # ---- watch listeners --------------------------------------------------------------------
    def _on_host_key(self, key: str, _old: Entry[bytes] | None, new: Entry[bytes] | None) -> None:
        host, kind = keys.split_host(key)
        if kind == keys.CAPABILITIES:
            if new is None:
                self._capabilities.pop(host, None)
            else:
                self._capabilities[host] = state_pb2.HostCapabilities.FromString(new.value)
            self._changed(host)
        elif kind == keys.STATS:
            if new is None:
                self._stats.pop(host, None)
            else:
                self._stats[host] = state_pb2.HostStats.FromString(new.value)
            self._changed(host, reported=True)
        elif kind == keys.USAGE:
            if new is None:
                self._set_usage(host, state_pb2.HostUsage(), 0, force=True)
            elif new.mod_revision > self._usage.get(host, (None, -1))[1]:  # not our own write, seen already
                self._set_usage(host, state_pb2.HostUsage.FromString(new.value), new.mod_revision)

    def _on_aggregate_key(
        self, _key: str, old: Entry[aggregates_pb2.Aggregate] | None, new: Entry[aggregates_pb2.Aggregate] | None
    ) -> None:
        touched = set(old.value.hosts if old else ()) | set(new.value.hosts if new else ())
        if not touched:
            return
        # Each aggregate's members as a set, once: a membership test per host and aggregate.
        members = [(e.value, set(e.value.hosts)) for _, e in sorted(self._aggregates.entries.items())]
        for host in touched:
            self._host_aggregates[host] = tuple(a for a, hosts in members if host in hosts)
            self._changed(host)

    def _on_service_key(self, key: str, _old: object, _new: object) -> None:
        _, host = keys.split_service(key)
        self._changed(host)

    # ---- bookkeeping ------------------------------------------------------------------------
    def _set_usage(self, host: str, usage: state_pb2.HostUsage, revision: int, *, force: bool = False) -> None:
        previous = self._usage.get(host)
        if previous is not None and not force and revision <= previous[1]:
            return  # an older (or the same) record than the one held, e.g. the watch event of our own write
        before = set(previous[0].claims) if previous else set()
        after = set(usage.claims)
        for instance_id in before - after:
            holders = self._holders.get(instance_id)
            if holders is not None:
                holders.discard(host)
                if not holders:
                    del self._holders[instance_id]
        for instance_id in after - before:
            self._holders.setdefault(instance_id, set()).add(host)
        self._usage[host] = (usage, revision)
        if self._loading is not None:
            self._loading.add(host)
            return
        state = self._states.get(host)
        if state is None:
            self._rebuild(host)
        else:  # only the usage changed: the rest of the state stands; claims new since the load are builds
            self._states[host] = state = state.with_usage(usage, revision, track=self._hosts.ready.is_set())
            self._notify(host, state)

    def _changed(self, host: str, *, reported: bool = False) -> None:
        """What the host's state is built from changed: build it now, or once the caches have loaded."""
        if self._loading is not None:
            self._loading.add(host)
        else:
            self._rebuild(host, reported=reported)

    def _rebuild(self, host: str, *, reported: bool = False) -> None:
        """The host's state from what is cached; ``reported``: its stats were just published, so
        they count every build claimed before."""
        capabilities = self._capabilities.get(host)
        if capabilities is None:
            if self._states.pop(host, None) is not None:
                self._notify(host, None)
            return
        usage, revision = self._usage.get(host, (state_pb2.HostUsage(), 0))
        admin = self._admin.get(keys.service_admin(COMPUTE, host)) or state_pb2.ServiceAdmin()
        previous = self._states.get(host)
        unreported = frozenset() if reported or previous is None else previous.unreported
        self._states[host] = HostState(
            host=host,
            capabilities=capabilities,
            usage=usage,
            usage_revision=revision,
            alive=self._services.get(keys.service(COMPUTE, host)) is not None,
            enabled=admin.status != services_pb2.SERVICE_STATUS_DISABLED,
            forced_down=admin.forced_down,
            disabled_reason=admin.disabled_reason,
            stats=self._stats.get(host, state_pb2.HostStats()),
            aggregates=self._host_aggregates.get(host, ()),
            unreported=unreported,
        )
        self._notify(host, self._states[host])

    def _notify(self, host: str, state: HostState | None) -> None:
        for listener in self._listeners:
            listener(host, state)

"""Scheduler benchmark: decisions per second and latency on issue 3's synthetic workload.

    .venv/bin/python bench/scheduler_bench.py [--hosts N] [--decisions M] [--mode core|claims|both]
                                              [--concurrency C] [--profile FILE]

``core``: the scheduling core alone, in-process: the host table built from ``HostState``
objects, the default filters and weighers, each decision applied to the in-memory state.
``claims``: the full path: a ``SchedulerManager`` with its watch-fed host cache over a real etcd
started here (temp dir, free ports, stopped by pid), hosts and the servers' records (BUILD, no
host) written into etcd first (many to a transaction, under etcd's limits: ``load_s``), the
scheduler started on them (its caches loaded page by page: ``start_s``), decisions issued with C
in flight (each with the record and its revision, as the api's build sends them), each claimed by
compare-and-swap in the same transaction as its record gets the host. With ``--concurrency 1``
each decision sees the one before it landed, so its ``choices_digest`` is core mode's. One JSON
line per run. Hosts come from ``bench/workload.py``, the same as the Nova baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import REQUEST, Host, choices_digest, make_hosts
from services.core import claims, instances, keys
from services.core.etcd import Store
from services.scheduler.chains import engine_config
from services.scheduler.engine import Engine
from services.scheduler.host_state import HostState
from services.scheduler.manager import SchedulerManager, claim_for
from services.scheduler.options import OptionsWatcher
from services.scheduler.options_model import SchedulerOptions
from services.scheduler.request import SchedulingRequest
from services.scheduler.table import HostTable
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import aggregates_pb2, servers_pb2
from tests.support.etcd_server import start_etcd

AZ2_AGGREGATE = "agg-az2"
ALTERNATES = 2


def spec(i: int) -> scheduler_pb2.RequestSpec:
    return scheduler_pb2.RequestSpec(
        instance_id=f"bench-{i:07d}",
        project_id="bench",
        flavor_id="bench",
        resources=servers_pb2.ServerResources(**REQUEST),
    )


def records(h: Host) -> tuple[state_pb2.HostCapabilities, state_pb2.HostUsage]:
    """A workload host as the compute would report it: totals in az1, what is used as one claim."""
    caps = state_pb2.HostCapabilities(
        host=h["host"], vcpus=h["vcpus"], ram_mb=h["ram_mb"], disk_gb=h["disk_gb"], availability_zone="az1"
    )
    used = state_pb2.Claim(
        instance_id=f"existing-{h['host']}", vcpus=h["vcpus_used"], ram_mb=h["ram_mb_used"], disk_gb=h["disk_gb_used"]
    )
    return caps, state_pb2.HostUsage(claims={used.instance_id: used})


def az2_aggregate(hosts: list[Host]) -> aggregates_pb2.Aggregate:
    return aggregates_pb2.Aggregate(
        id=AZ2_AGGREGATE,
        name="az2",
        availability_zone="az2",
        metadata={"availability_zone": "az2"},
        hosts=[h["host"] for h in hosts if h["availability_zone"] == "az2"],
    )


def summary(mode: str, n_hosts: int, latencies: list[float], elapsed: float, **extra: Any) -> dict[str, Any]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "mode": mode,
        "hosts": n_hosts,
        "decisions": len(latencies),
        "decisions_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
        **extra,
    }


# ---- core -----------------------------------------------------------------------------------
Decide = Callable[[int], str]


def core_scheduler(hosts: list[Host]) -> Decide:
    """decide(i): one decision on an in-memory copy of the workload, consuming what it chose."""
    aggregate = az2_aggregate(hosts)
    states: dict[str, HostState] = {}
    for h in hosts:
        caps, usage = records(h)
        in_az2 = (aggregate,) if h["availability_zone"] == "az2" else ()
        states[h["host"]] = HostState(h["host"], caps, usage, usage_revision=1, aggregates=in_az2)
    table = HostTable()
    for name, state in states.items():
        table.update(name, state)
    engine = Engine(table, states.get)
    config = engine_config(SchedulerOptions().option_values())

    def decide(i: int) -> str:
        s = spec(i)
        request = SchedulingRequest.of(s)
        ranking = engine.rank(config, request, config.host_subset_size + ALTERNATES)
        host, _ = engine.pick(ranking, config.host_subset_size)
        old = states[host]  # consume: the claim lands in the host's usage, as a watch event would
        usage = state_pb2.HostUsage()
        usage.CopyFrom(old.usage)
        usage.claims[s.instance_id].CopyFrom(claim_for(s))
        states[host] = old.with_usage(usage, old.usage_revision + 1, track=True)  # a build the compute has not reported
        table.update(host, states[host])
        return host

    return decide


def run_core(hosts: list[Host], decisions: int, warmup: int, profiler: cProfile.Profile | None) -> dict[str, Any]:
    warm = core_scheduler(hosts)  # warm up on a copy, so the timed run starts from the workload
    for i in range(warmup):
        warm(-1 - i)
    decide = core_scheduler(hosts)
    latencies, choices = [], []
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    for i in range(decisions):
        t0 = time.perf_counter()
        choices.append(decide(i))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    if profiler:
        profiler.disable()
    return summary(
        "core", len(hosts), latencies, elapsed, distinct_hosts=len(set(choices)), first_choices=choices[:5],
        choices_digest=choices_digest(choices),
    )  # fmt: skip


# ---- claims ---------------------------------------------------------------------------------
# etcd refuses a transaction of more than --max-txn-ops (default 128) operations or a request of
# more than --max-request-bytes (default 1.5 MiB): the setup writes in transactions well under both.
TXN_OPS = 120
TXN_BYTES = 512 << 10


async def put_batches(store: Store, writes: list[tuple[str, bytes]], concurrency: int = 4) -> list[int]:
    """Puts every (key, value), many to a transaction (a few transactions in flight); the revision
    each was written at, in order."""
    batches: list[list[int]] = [[]]
    size = 0
    for i, (key, value) in enumerate(writes):
        weight = len(key) + len(value) + 16
        if len(batches[-1]) >= TXN_OPS or (batches[-1] and size + weight > TXN_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(i)
        size += weight
    revisions = [0] * len(writes)
    queue = list(reversed(batches))

    async def worker() -> None:
        while queue:
            batch = queue.pop()
            _, resp = await store.txn([], [store.op_put(*writes[i]) for i in batch])
            for i in batch:
                revisions[i] = int(resp.header.revision)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return revisions


async def load_hosts(store: Store, hosts: list[Host]) -> None:
    """Each host as its compute reports it: capabilities, usage, its service record."""
    writes: list[tuple[str, bytes]] = []
    for h in hosts:
        caps, usage = records(h)
        service = state_pb2.ServiceRecord(binary="compute", host=h["host"], endpoint=f"{h['host']}:1")
        writes.append((keys.host_capabilities(h["host"]), caps.SerializeToString()))
        writes.append((keys.host_usage(h["host"]), usage.SerializeToString()))
        writes.append((keys.service("compute", h["host"]), service.SerializeToString()))
    writes.append((keys.aggregate(AZ2_AGGREGATE), az2_aggregate(hosts).SerializeToString()))
    await put_batches(store, writes)


Records = dict[int, tuple[state_pb2.InstanceRecord, int]]


async def load_records(store: Store, indexes: list[int]) -> Records:
    """The servers' records as the api writes them at create (BUILD, scheduling, no host), with
    their mod revisions: the api's build sends both with its request, as here."""
    made: list[state_pb2.InstanceRecord] = []
    for i in indexes:
        s = spec(i)
        server = servers_pb2.Server(
            id=s.instance_id, project_id=s.project_id, flavor_id=s.flavor_id, resources=s.resources,
            vm_state=servers_pb2.VmState.VM_STATE_BUILDING, task_state=servers_pb2.TaskState.TASK_STATE_SCHEDULING,
        )  # fmt: skip
        record = state_pb2.InstanceRecord(server=server)
        instances.stamp(record)
        made.append(record)
    writes = [(keys.instance(r.server.id), r.SerializeToString()) for r in made]
    revisions = await put_batches(store, writes)
    return {i: (r, rev) for i, r, rev in zip(indexes, made, revisions, strict=True)}


async def in_flight(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> list[float]:
    """Runs one(i) for i in 0..count-1 with ``concurrency`` in flight; each one's latency."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i, next_index = next_index, next_index + 1
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def release_all(store: Store, manager: SchedulerManager, warmup: int) -> None:
    """Releases the warm-up's claims and waits until the scheduler's cache has seen it."""
    for i in range(warmup):
        instance_id = spec(-1 - i).instance_id
        for host in manager.hosts.holders(instance_id):
            await claims.unplace(store, instance_id, host, lambda _record: None)
    for _ in range(1000):
        if not any(manager.hosts.holders(spec(-1 - i).instance_id) for i in range(warmup)):
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the warm-up's claims did not go away")


async def overcommitted(store: Store) -> int:
    """Hosts whose claims exceed what they have (at the default ratios: none should)."""
    caps: dict[str, state_pb2.HostCapabilities] = {}
    usages: dict[str, state_pb2.HostUsage] = {}
    async for page in store.scan(keys.HOSTS):
        for kv in page.kvs:
            host, kind = keys.split_host(kv.key)
            if kind == keys.CAPABILITIES:
                caps[host] = state_pb2.HostCapabilities.FromString(kv.value)
            elif kind == keys.USAGE:
                usages[host] = state_pb2.HostUsage.FromString(kv.value)
    bad = 0
    for host, usage in usages.items():
        c = caps[host]
        claims = usage.claims.values()
        if sum(x.ram_mb for x in claims) > c.ram_mb or sum(x.vcpus for x in claims) > 4 * c.vcpus:
            bad += 1
    return bad


async def unplaced(store: Store) -> int:
    """The timed run's servers whose record names no host (each decision writes it: none should)."""
    count = 0
    async for page in store.scan(keys.INSTANCES):
        records = (state_pb2.InstanceRecord.FromString(kv.value) for kv in page.kvs)
        count += sum(1 for r in records if not r.server.host and not r.server.id.startswith("bench--"))
    return count


async def run_claims(
    hosts: list[Host], decisions: int, warmup: int, concurrency: int, profiler: cProfile.Profile | None
) -> dict[str, Any]:
    etcd = start_etcd()
    store = Store([etcd.client_url], prefix="/bench/")
    manager: SchedulerManager | None = None
    try:
        await store.connect()
        t0 = time.perf_counter()
        await load_hosts(store, hosts)
        loaded = await load_records(store, [-1 - i for i in range(warmup)] + list(range(decisions)))
        load_s = time.perf_counter() - t0
        manager = SchedulerManager(store, options=OptionsWatcher(SchedulerOptions().option_values()))
        t0 = time.perf_counter()
        await manager.start()  # the caches are loaded when it returns
        assert len(manager.table) == len(hosts), "the scheduler does not see every host"
        start_s = time.perf_counter() - t0
        m = manager
        choices = [""] * decisions

        async def warm(i: int) -> None:
            await m.select_destinations(spec(-1 - i), record=loaded[-1 - i])

        async def one(i: int) -> None:
            choices[i] = (await m.select_destinations(spec(i), record=loaded[i])).selected.host

        await in_flight(warmup, concurrency, warm)
        await release_all(store, m, warmup)  # the timed run starts from the workload
        if profiler:
            profiler.enable()
        start = time.perf_counter()
        latencies = await in_flight(decisions, concurrency, one)
        elapsed = time.perf_counter() - start
        if profiler:
            profiler.disable()
        bad = await overcommitted(store)
        return summary(
            "claims", len(hosts), latencies, elapsed,
            concurrency=concurrency, load_s=round(load_s, 2), start_s=round(start_s, 2), overcommitted_hosts=bad,
            records_without_host=await unplaced(store), choices_digest=choices_digest(choices),
        )  # fmt: skip
    finally:
        if manager is not None:
            await manager.stop()
        await store.close()
        etcd.stop()


def report(profiler: cProfile.Profile | None, path: str | None) -> None:
    if profiler is None or not path:
        return
    profiler.dump_stats(path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    print(out.getvalue(), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--mode", choices=("core", "claims", "both"), default="both")
    parser.add_argument("--concurrency", type=int, default=8, help="decisions in flight (claims mode)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", help="profile the timed runs: stats to PROFILE.<mode>, top entries to stderr")
    args = parser.parse_args()
    hosts = make_hosts(args.hosts, args.seed)
    if args.mode in ("core", "both"):
        profiler = cProfile.Profile() if args.profile else None
        print(json.dumps(run_core(hosts, args.decisions, args.warmup, profiler)), flush=True)
        report(profiler, args.profile and f"{args.profile}.core")
    if args.mode in ("claims", "both"):
        profiler = cProfile.Profile() if args.profile else None
        result = asyncio.run(run_claims(hosts, args.decisions, args.warmup, args.concurrency, profiler))
        print(json.dumps(result), flush=True)
        report(profiler, args.profile and f"{args.profile}.claims")


if __name__ == "__main__":
    main()

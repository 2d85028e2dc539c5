"""Create -> ACTIVE latency with the fake driver, through the public API of a real stack.

Starts ``stratus up --driver fake`` in a temp dir, creates N servers one after another, follows
each with WatchServers until ACTIVE, deletes it, and prints one JSON line with the median and p90.

    .venv/bin/python -m bench.create_active_bench [--servers 20] [--computes 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from stratus.v1 import servers_pb2
from tests.support.stack import Stack, start_stack


def create_to_active_s(stack: Stack, name: str) -> float:
    servers, md = stack.servers, stack.md()
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny")
    start = time.perf_counter()
    elapsed = float("nan")
    server = servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=md)
    for event in servers.WatchServers(servers_pb2.WatchServersRequest(id=server.id), metadata=md):
        if event.server.status == servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE:
            elapsed = time.perf_counter() - start
            break
        if event.server.status == servers_pb2.ServerStatus.SERVER_STATUS_ERROR:
            raise RuntimeError(f"{name} went to ERROR: {event.server.fault.message}")
    servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=md)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--computes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        stack = start_stack(Path(tmp), "--driver", "fake", "--computes", str(args.computes))
        try:
            create_to_active_s(stack, "warm-up")
            times = [create_to_active_s(stack, f"bench-{i}") for i in range(args.servers)]
        finally:
            stack.stop()
    times_ms = sorted(t * 1000 for t in times)
    print(json.dumps({
        "bench": "create_to_active", "driver": "fake", "servers": len(times_ms),
        "median_ms": round(statistics.median(times_ms), 2),
        "p90_ms": round(times_ms[int(0.9 * (len(times_ms) - 1))], 2),
        "min_ms": round(times_ms[0], 2), "max_ms": round(times_ms[-1], 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

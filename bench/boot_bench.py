"""Boot times of real guests: ``stratus up --driver libvirt`` in a temp dir, the tiny image, the public API.

For each boot it measures create -> ACTIVE (from WatchServers) and create -> the guest's first
console line and its ``stratus-guest: name=`` line (polling GetServerConsoleOutput every 50 ms).
Prints one JSON line per phase:

- ``cold``: the first boot, with the image not yet in the host's cache;
- ``warm``: ``--boots`` boots one after another, the image cached (median and p90);
- ``concurrent``: ``--concurrent`` creates at once on the one host (each time from its create).

    make libvirtd guest && .venv/bin/python -m bench.boot_bench [--boots 10] [--concurrent 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from stratus.v1 import servers_pb2
from tests.support.domains import remove_domains_under
from tests.support.stack import Stack, start_stack

S = servers_pb2.ServerStatus
POLL_S = 0.05
TIMEOUT_S = 120.0
NAME_LINE = "stratus-guest: name="


@dataclass
class Boot:
    active_s: float = float("nan")
    first_line_s: float = float("nan")
    name_line_s: float = float("nan")


def wait_active(stack: Stack, server_id: str, start: float, boot: Boot) -> None:
    request = servers_pb2.WatchServersRequest(id=server_id)
    for event in stack.servers.WatchServers(request, metadata=stack.md(), timeout=TIMEOUT_S):
        if event.server.status == S.SERVER_STATUS_ACTIVE:
            boot.active_s = time.perf_counter() - start
            return
        if event.server.status == S.SERVER_STATUS_ERROR:
            raise RuntimeError(f"{server_id} went to ERROR: {event.server.fault.message}")


def wait_console(stack: Stack, server_id: str, start: float, boot: Boot) -> None:
    request = servers_pb2.GetServerConsoleOutputRequest(id=server_id)
    while time.perf_counter() - start < TIMEOUT_S:
        try:
            output = stack.servers.GetServerConsoleOutput(request, metadata=stack.md()).output
        except grpc.RpcError as exc:  # no host or no domain yet
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            output = ""
        now = time.perf_counter() - start
        if output.strip() and boot.first_line_s != boot.first_line_s:  # NaN: not seen yet
            boot.first_line_s = now
        if NAME_LINE in output:
            boot.name_line_s = now
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"{server_id}: no {NAME_LINE!r} line within {TIMEOUT_S:.0f}s")


def boot_one(stack: Stack, name: str, results: list[Boot]) -> None:
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", user_data=b"bench\n")
    start = time.perf_counter()
    server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    boot = Boot()
    watcher = threading.Thread(target=wait_active, args=(stack, server.id, start, boot))
    watcher.start()
    wait_console(stack, server.id, start, boot)
    watcher.join()
    results.append(boot)
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id, timeout_s=TIMEOUT_S)


def summary(phase: str, boots: list[Boot], virt_type: str) -> dict[str, object]:
    out: dict[str, object] = {"bench": "boot", "phase": phase, "boots": len(boots), "virt_type": virt_type}
    for field in ("active_s", "first_line_s", "name_line_s"):
        values = sorted(getattr(b, field) for b in boots)
        out[f"{field}_median"] = round(statistics.median(values), 3)
        out[f"{field}_p90"] = round(values[int(0.9 * (len(values) - 1))], 3)
    return out


def virt_type_of(stack: Stack) -> str:
    log = (stack.state_dir / "logs" / "compute-1.log").read_text(errors="replace")
    for word in ("virt_type auto: kvm", "virt_type auto: qemu"):
        if word in log:
            return word.rsplit(" ", 1)[-1]
    return "as set"


def concurrent(stack: Stack, count: int) -> list[Boot]:
    results: list[Boot] = []
    threads = [threading.Thread(target=boot_one, args=(stack, f"burst-{i}", results)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) != count:
        raise RuntimeError(f"only {len(results)} of {count} concurrent boots finished")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=10)
    args = parser.parse_args()
    # Ten 1-vCPU guests on a 2-core host need more than the default 4x CPU over-commit.
    env = {"STRATUS_CPU_ALLOCATION_RATIO": "16"}
    with tempfile.TemporaryDirectory(prefix="stratus-boot-bench-") as tmp:
        stack = start_stack(Path(tmp), "--driver", "libvirt", "--computes", "1", env=env)
        try:
            virt_type = virt_type_of(stack)
            cold: list[Boot] = []
            boot_one(stack, "cold", cold)
            print(json.dumps(summary("cold", cold, virt_type)), flush=True)
            warm: list[Boot] = []
            for i in range(args.boots):
                boot_one(stack, f"warm-{i}", warm)
            print(json.dumps(summary("warm", warm, virt_type)), flush=True)
            print(json.dumps(summary("concurrent", concurrent(stack, args.concurrent), virt_type)), flush=True)
        finally:
            stack.stop()
            remove_domains_under(Path(tmp))  # only if a boot failed half-way


if __name__ == "__main__":
    main()

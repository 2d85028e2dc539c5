"""How long the CLI takes to start and answer: ``stratus server list`` against a running stack,
``stratus --help``, and an api that is not there, each a fresh process as a user runs it.

Starts ``stratus up --driver fake`` in a temp dir (or uses the stack of ``--state-dir``), runs each
command N times (after one warm-up run that also lets Python write its bytecode caches), and prints
one JSON line with the medians. No test asserts these figures: the machine's load moves them.

    .venv/bin/python -m bench.cli_startup [--runs 15] [--state-dir DIR] [--servers 3] [--cli-root DIR]

``--cli-root`` times another copy of the code (``git archive <commit> | tar -x -C DIR``) as
``python -m services.cli.main`` run in DIR, against the same stack: a before and after in one session.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stratus.v1 import servers_pb2
from tests.support.stack import Stack, start_stack

ROOT = Path(__file__).resolve().parents[1]


def stratus_argv(cli_root: Path | None = None) -> list[str]:
    """The installed ``stratus`` script beside this Python (as a user runs it), else ``-m``; the
    code in ``cli_root`` with ``-m`` when given."""
    script = Path(sys.executable).with_name("stratus")
    if cli_root is None and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "services.cli.main"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STRATUS_")}


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,), cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def median_ms(
    argv: list[str], runs: int, env: dict[str, str], ok: tuple[int, ...] = (0,), cwd: Path = ROOT
) -> dict[str, float]:
    timed(argv, env, ok, cwd)  # warm-up: the OS's file cache, Python's bytecode caches
    times = sorted(timed(argv, env, ok, cwd) * 1000 for _ in range(runs))
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(times[0], 1),
            "max_ms": round(times[-1], 1)}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_servers(stack: Stack, count: int) -> None:
    for i in range(count):
        spec = servers_pb2.Server(name=f"bench-{i}", flavor_id="m1.tiny", image_id="tiny")
        created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
        stack.wait_for_server(created.id, {"ACTIVE"})


def measure(state_dir: Path, runs: int, cli_root: Path | None = None) -> dict[str, object]:
    cli, env, cwd = stratus_argv(cli_root), clean_env(), cli_root or ROOT
    dead = [*cli, "server", "list", "--api", f"127.0.0.1:{free_port()}", "--token", "x"]
    where = ["--state-dir", str(state_dir)]
    return {
        "bench": "cli_startup", "runs": runs, "command": " ".join([Path(cli[0]).name, *cli[1:]]),
        "code": str(cwd),
        "server_list": median_ms([*cli, "server", "list", *where], runs, env, cwd=cwd),
        "server_list_json": median_ms([*cli, "server", "list", "-f", "json", *where], runs, env, cwd=cwd),
        "help": median_ms([*cli, "--help"], runs, env, cwd=cwd),
        "unreachable_api": median_ms(dead, min(runs, 5), env, ok=(1,), cwd=cwd),
        "python_only": median_ms([sys.executable, "-c", "pass"], runs, env),
        "bytecode_written": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--state-dir", type=Path, help="A running stack's state dir (default: start one).")
    parser.add_argument("--servers", type=int, default=3, help="Servers to create first in a stack it starts.")
    parser.add_argument("--cli-root", type=Path, help="Time the CLI of the code in this directory instead.")
    args = parser.parse_args()
    if args.state_dir is not None:
        print(json.dumps(measure(args.state_dir, args.runs, args.cli_root)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    try:
        stack = start_stack(tmp, "--driver", "fake")
        try:
            add_servers(stack, args.servers)
            print(json.dumps(measure(tmp, args.runs, args.cli_root)))
        finally:
            stack.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

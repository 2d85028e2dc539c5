"""What ``stratus up`` tells a person once the stack is serving."""

from __future__ import annotations

from pathlib import Path

from services.core.config import DEFAULT_STATE_DIR
from services.launcher.stackfile import StackInfo


def api_lines(info: StackInfo) -> list[str]:
    """``api  ADDR``; with replicas, each on a line of its own (any of them serves any call)."""
    tls = " (TLS)" if info.ca_cert else ""
    if len(info.apis) == 1:
        return [f"  api        {info.api}{tls}"]
    return [f"  {f'api-{i}':<11}{endpoint}{tls}" for i, endpoint in enumerate(info.apis, 1)]


def summary_lines(info: StackInfo, logs_dir: Path, local_etcd: bool) -> list[str]:
    hosts = ", ".join(s.host for s in info.services)
    lines = [
        f"Stratus is up: {len(info.services)} services ({hosts})",
        *api_lines(info),
        *([f"  ca cert    {info.ca_cert} (for grpcurl -cacert; the CLI reads stack.json)"] if info.ca_cert else []),
        f"  etcd       {', '.join(info.etcd)}{' (local)' if local_etcd else ''}",
        f"  state dir  {info.state_dir} (stack.json, tokens.json)",
        f"  logs       {logs_dir}/<host>.log",
        "",
    ]
    if Path(info.state_dir) != DEFAULT_STATE_DIR:
        lines.append(f"Point the CLI at this stack:  export STRATUS_STATE_DIR={info.state_dir}")
    lines += [
        "Try:  stratus server create demo --flavor m1.tiny --image tiny --wait",
        "      stratus server list    stratus host list    stratus service list    (-f json for scripts)",
        "Ctrl-C stops the stack.",
    ]
    return lines


def print_summary(info: StackInfo, logs_dir: Path, local_etcd: bool) -> None:
    print("\n".join(summary_lines(info, logs_dir, local_etcd)), flush=True)

"""``stratus etcd status|disarm``: the state store's own limits, for an operator.

These talk to etcd itself, not to the api: while etcd's NOSPACE alarm is raised it refuses writes,
and getting out of it is an act on etcd (compact its history, defragment each member, one at a
time, then disarm the alarm). etcd's URLs come from ``--etcd``, else the stack's ``stack.json``
(with the certificate the stack's etcd asks for: only the stack's own etcd is shown it). Another
TLS cluster is for ``etcdctl`` (``etcdctl alarm disarm``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from services.cli import options, output
from services.cli.options import StateDirOpt
from services.cli.output import Format, FormatOpt
from services.cli.target import state_dir_of
from services.core.etcd import EtcdTls, Store, is_store_outage
from services.core.etcd_maint import Alarm, Member, MemberStatus, describe
from services.core.etcd_members import ClusterMaintenance
from services.launcher.stackfile import BadStackFile, read_stack, stack_path

app = typer.Typer(help="The state store (etcd): database sizes, alarms, clearing NOSPACE.", no_args_is_help=True)
T = TypeVar("T")

EtcdOpt = Annotated[
    str | None,
    typer.Option("--etcd", metavar="URL,...", help="etcd's URLs (default: the stack's, from stack.json).",
                 show_default=False),
]  # fmt: skip


Target = tuple[list[str], EtcdTls | None]


def etcd_target(flag: str | None, state_dir: Path | None) -> Target:
    """``--etcd`` (plaintext), else the URLs and client certificate in the stack's stack.json;
    exit 1 saying why when there are none."""
    if flag:
        return [url.strip() for url in flag.split(",") if url.strip()], None
    path = stack_path(state_dir_of(state_dir or options.given().state_dir, os.environ))  # or before the command
    try:
        stack = read_stack(path)
    except BadStackFile as exc:
        stack, why = None, str(exc)
    else:
        why = f"no {path}"
    if stack is None or not stack.etcd:
        output.err(f"error: no etcd to talk to ({why}); pass --etcd URL or start a stack with `stratus up`")
        raise typer.Exit(1)
    return list(stack.etcd), stack.etcd_client_tls()


def on_cluster(target: Target, work: Callable[[ClusterMaintenance], Awaitable[T]]) -> T:
    """Runs ``work`` against the cluster; exit 1 with a message when etcd cannot be reached."""
    urls, tls = target

    async def run() -> T:
        store = Store(urls, tls=tls)
        try:
            await store.connect(wait_s=5.0)
            return await work(ClusterMaintenance(store, tls))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ValueError as exc:  # an https:// URL of another cluster: no certificate for it here
        output.err(f"error: {exc}; for a TLS cluster use etcdctl")
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        output.err(f"error: etcd at {','.join(urls)} did not answer: {exc}")
    raise typer.Exit(1)


def status_rows(statuses: list[tuple[Member, MemberStatus]], alarms: list[Alarm]) -> list[dict[str, Any]]:
    return [
        {"member": m.name, "endpoint": m.client_urls[0] if m.client_urls else "", "leader": s.is_leader,
         "db_size": s.db_size, "db_size_in_use": s.db_size_in_use,
         "alarms": [a.kind for a in alarms if a.member_id == m.id]}
        for m, s in statuses
    ]  # fmt: skip


STATUS_COLUMNS: list[output.Column] = [
    ("MEMBER", lambda r: r["member"]),
    ("ENDPOINT", lambda r: r["endpoint"]),
    ("LEADER", lambda r: "yes" if r["leader"] else ""),
    ("DB_SIZE", lambda r: str(r["db_size"])),
    ("IN_USE", lambda r: str(r["db_size_in_use"])),
    ("ALARMS", lambda r: ",".join(r["alarms"])),
]


@app.command("status")
def status(etcd: EtcdOpt = None, fmt: FormatOpt = Format.table, state_dir: StateDirOpt = None) -> None:
    """Each etcd member's database size, how much of it is in use, and its alarms.

    The quota is compared with the size; the part not in use is what a defragmentation gives back."""

    async def read(cluster: ClusterMaintenance) -> tuple[list[tuple[Member, MemberStatus]], list[Alarm]]:
        return await cluster.statuses(), await cluster.alarms()

    statuses, alarms = on_cluster(etcd_target(etcd, state_dir), read)
    rows = status_rows(statuses, alarms)
    if fmt in (Format.json, Format.yaml):
        output.dump(fmt, rows)
    elif fmt is Format.value:
        output.print_lines(" ".join(get(row) for _, get in STATUS_COLUMNS) for row in rows)
    else:
        output.print_table(STATUS_COLUMNS, rows)
    for alarm in alarms:
        output.err(f"warning: {describe(alarm, [m for m, _ in statuses])}")


async def _disarm(cluster: ClusterMaintenance, compact: bool, defrag: bool) -> list[Alarm]:
    if compact:
        revision = await cluster.compact_now()
        print(f"compacted etcd's history up to revision {revision}")
    if defrag:
        for member in await cluster.members():  # one at a time: a member answers nothing while it runs
            after = await cluster.defragment(member)
            print(f"defragmented {member.label}: {after.db_size} bytes, {after.db_size_in_use} in use")
    return await cluster.disarm()


@app.command("disarm")
def disarm(
    etcd: EtcdOpt = None,
    compact: Annotated[
        bool, typer.Option("--compact/--no-compact", help="First drop the history before now (watches list again).")
    ] = True,
    defrag: Annotated[bool, typer.Option("--defrag/--no-defrag", help="Then defragment each member in turn.")] = True,
    state_dir: StateDirOpt = None,
) -> None:
    """Clear etcd's NOSPACE alarm, once space was freed or the quota raised.

    Compacts the history, defragments each member in turn, then disarms. If the data still does not
    fit, etcd raises the alarm again at the next write that finds no room."""
    cleared = on_cluster(etcd_target(etcd, state_dir), lambda cluster: _disarm(cluster, compact, defrag))
    if not cleared:
        print("no NOSPACE alarm was raised")
    for alarm in cleared:
        print(f"disarmed NOSPACE of etcd member {alarm.member_id:x}")

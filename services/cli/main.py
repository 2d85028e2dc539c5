"""``stratus``: run a process, start a stack (``stratus up``), or use one (``stratus server ...``).

A command's module is imported only when that command runs (or its own ``--help`` is asked for):
``stratus server list`` loads the server commands and what they use, not the launcher, the
processes, etcd's client or pydantic. ``COMMANDS`` names each command's module and the line
``stratus --help`` shows for it (a unit test keeps that line equal to the command's own help).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from services.cli import options, version
from services.cli.coercion import speed_up


@dataclass(frozen=True)
class Entry:
    load: Callable[[], Any]  # a typer.Typer (a group of commands) or a command's function
    panel: str
    help: str


def attr(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def server_app() -> Any:
    from services.cli import server_actions, server_history, servers

    if not any(info.name == "actions" for info in servers.app.registered_commands):  # once a process
        server_actions.register(servers.app)
        server_history.register(servers.app)
    return servers.app


COMMANDS: dict[str, Entry] = {
    "up": Entry(attr("services.launcher.command", "up"), "Stack",
                "Start a whole stack on this machine (etcd too) and supervise it until Ctrl-C."),
    "api": Entry(attr("services.cli.processes", "api"), "Processes", "Run the public API server."),
    "scheduler": Entry(attr("services.cli.processes", "scheduler"), "Processes", "Run a scheduler."),
    "compute": Entry(attr("services.cli.processes", "compute"), "Processes", "Run a compute node."),
    "servicegroup": Entry(attr("services.cli.processes", "servicegroup"), "Processes", "Run the membership service."),
    "server": Entry(server_app, "Resources", "Servers: the virtual machines of a project."),
    "flavor": Entry(attr("services.cli.flavors", "app"), "Resources", "Flavors: the sizes servers come in."),
    "image": Entry(attr("services.cli.images", "app"), "Resources", "Images: the disks servers boot from."),
    "server-group": Entry(attr("services.cli.server_groups", "app"), "Resources",
                          "Server groups: affinity and anti-affinity between servers."),
    "keypair": Entry(attr("services.cli.keypairs", "app"), "Resources",
                     "Keypairs: your SSH public keys, given to the servers you create with --key-name."),
    "service": Entry(attr("services.cli.admin", "service_app"), "Admin",
                     "Services: every process of the stack (admin)."),
    "host": Entry(attr("services.cli.admin", "host_app"), "Admin", "Hosts: compute nodes and their usage (admin)."),
    "aggregate": Entry(attr("services.cli.aggregates", "app"), "Admin",
                       "Aggregates: sets of hosts with metadata and zones (admin)."),
    "placement": Entry(attr("services.cli.placement", "app"), "Admin",
                       "Placement: ask the scheduler without creating anything (admin)."),
    "quota": Entry(attr("services.cli.quotas", "app"), "Resources", "Quotas: limits and usage per project."),
    "token": Entry(attr("services.cli.tokens", "app"), "Admin",
                   "Tokens: bearer tokens with roles and an expiry (admin)."),
    "etcd": Entry(attr("services.cli.etcd_admin", "app"), "Admin",
                  "The state store (etcd): database sizes, alarms, clearing NOSPACE."),
}  # fmt: skip


def shell() -> typer.Typer:
    """A Typer to make one click command in (typer makes them for a whole app at once)."""
    return typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


def command_name(info: Any) -> str:
    return str(info.name or info.callback.__name__.lower().replace("_", "-"))


@functools.cache
def build(name: str) -> Any:
    """The click command of ``COMMANDS[name]``, its module imported now (once a process). A group
    holds its commands deferred in turn: each is made when it runs. Every command that takes
    ``-f`` gets ``-c`` (``columns.py``)."""
    from services.cli import columns

    entry = COMMANDS[name]
    target = entry.load()
    outer = shell()
    if not isinstance(target, typer.Typer):
        outer.command(name, rich_help_panel=entry.panel)(columns.with_columns(target))
        return speed_up(typer.main.get_group(outer).commands[name])
    columns.add_column_option(target)
    if target.registered_groups:  # groups in the group: all made now
        outer.add_typer(target, name=name, rich_help_panel=entry.panel)
        return speed_up(typer.main.get_group(outer).commands[name])
    hull = copy.copy(target)  # the group without its commands
    hull.registered_commands = []
    outer.add_typer(hull, name=name, rich_help_panel=entry.panel)
    group = speed_up(typer.main.get_group(outer).commands[name])
    for info in target.registered_commands:
        help_text = inspect.cleandoc(info.help) if info.help is not None else inspect.getdoc(info.callback)
        group.commands[command_name(info)] = Deferred(
            command_name(info), help_text or "", info.rich_help_panel, functools.partial(build_one, info),
            hidden=info.hidden, short_help=info.short_help,
        )  # fmt: skip
    return group


def build_one(info: Any) -> Any:
    """The click command of one command of a group."""
    one = shell()
    one.registered_commands.append(info)
    return speed_up(typer.main.get_group(one).commands[command_name(info)])


class Deferred(TyperCommand):
    """What a group holds for a command not made yet: its name and help line for ``--help``;
    parsing its arguments makes it (``load``, once) and hands them over."""

    def __init__(self, name: str, help_text: str, panel: str | None, make: Callable[[], Any], **attrs: Any) -> None:
        super().__init__(name=name, help=help_text, rich_help_panel=panel, **attrs)
        self.make = make
        self.made: Any = None

    def load(self) -> Any:
        if self.made is None:
            self.made = self.make()
        return self.made

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)


class LazyRoot(TyperGroup):
    """The ``stratus`` group: every command of ``COMMANDS``, each loaded when it is run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        speed_up(self)
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, Deferred(name, entry.help, entry.panel, functools.partial(build, name)))


app = typer.Typer(
    name="stratus",
    help="Stratus: a compute cloud control plane.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    cls=LazyRoot,
)
app.callback()(version.root_options)


def loaded(group: Any) -> Any:
    """``group`` with every command built (for tests and tools that walk the whole tree)."""
    for name, command in list(getattr(group, "commands", {}).items()):
        group.commands[name] = loaded(command.load() if isinstance(command, Deferred) else command)
    return group


def main() -> None:
    """Runs the command. A user command's process then ends at once (``os._exit`` once stdout and
    stderr are flushed): the interpreter's teardown of gRPC and of every module imported is a
    sixth of a ``server list``, and nothing of a user command runs at exit. ``stratus up`` and the
    processes, an exception's traceback and ``--help`` end as Python ends."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if options.given().quick_exit and (code is None or isinstance(code, int)):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # stdout closed early (`| head`): as Python would, quietly
            code = code or 1
        os._exit(code or 0)
    raise SystemExit(code)


if __name__ == "__main__":
    main()

"""The CLI imports only what the command it runs uses (``bench/cli_startup.py`` times it; no test
asserts a time): the top-level app builds without any command's module, ``server list`` needs
neither pydantic nor the launcher, etcd's client, OpenTelemetry or cryptography, and every command
still loads, with the help line ``stratus --help`` shows for it."""

from __future__ import annotations

import json
import subprocess
import sys
from enum import Enum
from typing import Any

import pytest
import typer
import typer.main
from typer.core import TyperCommand

from services.cli import coercion
from services.cli.main import COMMANDS, Deferred, app, build, loaded
from tests.support.stack import ROOT

HEAVY = ("pydantic", "pydantic_settings", "services.core.config", "services.launcher.command", "services.core.etcd",
         "etcd3aio", "opentelemetry", "cryptography", "services.cli.images", "services.cli.processes")  # fmt: skip


def modules_after(code: str) -> set[str]:
    """The modules a fresh Python has imported after running ``code``."""
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)  # fmt: skip
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_the_app_builds_without_any_commands_module() -> None:
    modules = modules_after("import typer.main\nfrom services.cli.main import app\ntyper.main.get_command(app)")
    assert heavy_in(modules) == []
    assert not {"grpc", "services.cli.servers", "services.cli.client", "rich.table"} & modules


def test_server_list_imports_only_what_it_uses() -> None:
    run = (
        "from services.cli.main import app\n"
        "try:\n"
        "    app(['server', 'list', '--api', '127.0.0.1:1', '--token', 't', '--state-dir', '/nonexistent'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 1, exc.code\n"  # nothing listens there: reported, exit 1
    )
    modules = modules_after(run)
    assert "services.cli.servers" in modules
    assert heavy_in(modules) == []
    assert not {m for m in modules if m.startswith("stratus.v1.") and m.split(".")[-1].startswith(
        ("aggregates", "hosts", "keypairs", "placement", "quotas", "services", "tokens"))}  # fmt: skip


def test_every_command_loads_with_the_help_line_the_top_level_shows() -> None:
    root = typer.main.get_command(app)
    for name, entry in COMMANDS.items():
        deferred = root.commands[name]  # type: ignore[attr-defined]
        assert isinstance(deferred, Deferred) and deferred.help == entry.help
        made = build(name)
        assert made.help == entry.help, name
        assert made.rich_help_panel == entry.panel, name
    every = loaded(typer.main.get_command(app))
    assert not [n for n, c in walk(every) if isinstance(c, Deferred)]
    assert {"server list", "server actions", "server snapshot", "image upload", "up", "etcd status"} <= {
        n for n, _ in walk(every)
    }


def walk(group: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((f"{path} {name}".strip(), command))
        found += walk(command, f"{path} {name}")
    return found


# ---- option values converted without pydantic: the same values as typer's own -----------------
SAMPLES: dict[Any, list[Any]] = {
    str: ["abc", "", "--x", "ünï"],
    bool: [True, False],
    float: ["0.5", "600", "1e3", "-2", "x", "", "0.01", "nan"],
    int: ["5", "0", "-3", "10001", "+7", "x", "1.5", ""],
}


def samples_for(descriptor: Any) -> list[Any]:
    annotation = descriptor.annotation
    if descriptor.is_list:
        return [("a",), ("a", "b"), ()]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        members: list[Any] = list(annotation)
        return [*(m.value for m in members), *members, "bogus", "JSON"]
    if annotation.__name__ == "Path":
        return ["/a/b", "rel", "~/x", ""]
    return SAMPLES.get(annotation, [])


def outcome(param: Any, value: Any) -> tuple[str, str]:
    ctx = typer.Context(TyperCommand("x"))
    try:
        converted = param.get_runtime_param().coerce(value, param=param, ctx=ctx)
        return "ok", f"{type(converted).__name__}:{converted!r}"  # nan as nan
    except Exception as exc:  # what typer refuses, with its message
        return "refused", type(exc).__name__


def test_the_fast_conversion_gives_typers_values() -> None:
    checked = 0
    for _, command in walk(loaded(typer.main.get_command(app))):
        for param in getattr(command, "params", []):
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or coercion.converter(descriptor) is None:
                continue
            for value in samples_for(descriptor):
                param._runtime_param = coercion.Plain(coercion.converter(descriptor))  # type: ignore[arg-type]
                fast = outcome(param, value)
                param._runtime_param = None  # typer's own
                assert fast == outcome(param, value), (command.name, param.name, value)
                checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    "args",
    [
        ["server", "list", "-f", "xml"],
        ["server", "console", "x", "--lines", "-1"],
        ["server", "create", "v", "--flavor", "f", "--image", "i", "--timeout", "0"],
    ],
)
def test_a_value_the_fast_conversion_refuses_gets_typers_message(args: list[str]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "Invalid value" in result.output

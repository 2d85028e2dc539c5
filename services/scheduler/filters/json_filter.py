"""The ``query`` scheduler hint: a JSON expression over the host's state, after Nova's JsonFilter.

A query is a JSON list ``[command, arg, ...]``; an argument is a nested query, a literal, or a
``$variable`` naming host state (see ``VARIABLES``; ``$capabilities.<name>`` reads a reported
capability). A variable the host lacks is dropped from the arguments, as in Nova. Commands:
``=``, ``<``, ``>``, ``<=``, ``>=`` (the first argument against each of the others), ``in`` (the
first argument is one of the others), ``not``, ``or``, ``and``. Example::

    ["and", [">=", "$free_ram_mb", 1024], ["<", "$num_instances", 5]]

A query that is not JSON, names an unknown command or variable, or nests too deeply refuses
every host and says why, instead of failing the request.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from services.scheduler.filters.base import Filter, Refusal
from services.scheduler.filters.capabilities import lookup
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

HINT = "query"
MAX_DEPTH = 32
CAPABILITIES = "capabilities"


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[list[Any]], bool]:
    def command(args: list[Any]) -> bool:
        return len(args) >= 2 and all(op(args[0], arg) for arg in args[1:])

    return command


COMMANDS: dict[str, Callable[[list[Any]], Any]] = {
    "=": _compare(operator.eq),
    "<": _compare(operator.lt),
    ">": _compare(operator.gt),
    "<=": _compare(operator.le),
    ">=": _compare(operator.ge),
    "in": lambda args: len(args) >= 2 and args[0] in args[1:],
    "not": lambda args: [not arg for arg in args],
    "or": any,
    "and": all,
}

VARIABLES: dict[str, Callable[[HostState], Any]] = {
    "host": lambda h: h.host,
    "free_ram_mb": lambda h: h.free_ram_mb,
    "free_disk_mb": lambda h: h.free_disk_gb * 1024,
    "free_disk_gb": lambda h: h.free_disk_gb,
    "free_vcpus": lambda h: h.free_vcpus,
    "vcpus_total": lambda h: h.capabilities.vcpus,
    "vcpus_used": lambda h: h.used.vcpus,
    "total_usable_ram_mb": lambda h: h.capabilities.ram_mb,
    "total_usable_disk_gb": lambda h: h.capabilities.disk_gb,
    "num_instances": lambda h: h.num_instances,
    "io_ops": lambda h: h.io_ops,
    "num_io_ops": lambda h: h.io_ops,
    "failed_builds": lambda h: h.stats.failed_builds,
    "hypervisor_type": lambda h: h.capabilities.hypervisor_type or None,
    "hypervisor_version": lambda h: h.capabilities.hypervisor_version or None,
    "availability_zone": lambda h: h.availability_zone or None,
}


def _check(query: Any, depth: int = 0) -> str | None:
    """Why the parsed query is malformed, or None."""
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} deep"
    if not isinstance(query, list):
        return f'expected a list like ["and", ...], got {json.dumps(query)[:60]}'
    if not query:
        return None
    if not isinstance(query[0], str) or query[0] not in COMMANDS:
        return f"unknown command {json.dumps(query[0])[:60]}; known: {' '.join(COMMANDS)}"
    for arg in query[1:]:
        error = _check(arg, depth + 1) if isinstance(arg, list) else _check_literal(arg)
        if error is not None:
            return error
    return None


def _check_literal(arg: Any) -> str | None:
    if isinstance(arg, dict):
        return f"unexpected object {json.dumps(arg)[:60]}"
    if isinstance(arg, str) and arg.startswith("$"):
        name, _, path = arg[1:].partition(".")
        if name == CAPABILITIES and path:
            return None
        if name not in VARIABLES or path:
            return f"unknown variable {arg}; known: ${' $'.join(VARIABLES)} $capabilities.<name>"
    return None


@lru_cache(maxsize=128)
def parse(text: str) -> tuple[Any, str | None]:
    """The query and None, or None and why it is malformed; cached, as every host asks."""
    try:
        query = json.loads(text)
    except (ValueError, RecursionError) as e:
        return None, f"not JSON ({e})"
    error = _check(query)
    return (None, error) if error else (query, None)


def _resolve(arg: str, host: HostState) -> Any:
    if not arg:
        return None
    if not arg.startswith("$"):
        return arg
    name, _, path = arg[1:].partition(".")
    if name == CAPABILITIES:
        return lookup(host.capabilities, path.split("."))
    return VARIABLES[name](host)


def evaluate(query: Sequence[Any], host: HostState) -> Any:
    """Nova's ``_process_filter`` over a checked query; TypeError on comparing unlike values."""
    if not query:
        return True
    args: list[Any] = []
    for raw in query[1:]:
        if isinstance(raw, list):
            arg = evaluate(raw, host)
        elif isinstance(raw, str):
            arg = _resolve(raw, host)
        else:
            arg = raw
        if arg is not None:
            args.append(arg)
    return COMMANDS[query[0]](args)


class JsonFilter(Filter):
    """Hosts for which the ``query`` hint holds."""

    name = "JsonFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return bool(request.spec.scheduler_hints.get(HINT, "").strip())

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        text = request.spec.scheduler_hints.get(HINT, "").strip()
        if not text:
            return None
        query, error = parse(text)
        if error is not None:
            return f"malformed query hint: {error}"
        try:
            result = evaluate(query, host)
        except TypeError:
            return f"query hint compares values of different types on this host: {text[:200]}"
        if isinstance(result, list):
            result = any(result)
        return None if result else f"does not match the query hint {text[:200]}"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        reasons = {reason for _, reason in refused}
        return reasons.pop() if len(reasons) == 1 else super().explain(request, refused)

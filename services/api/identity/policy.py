"""The method gate, default deny: every method the api serves has a rule over roles and project
scope, read from the shipped ``policy.toml`` with an operator's file replacing rules per method.

A rule is a role, optionally followed by checks::

    GetServer = "reader"                 # reader, member or admin may call it
    ListServers = "reader own_project"   # ... and only about the caller's own project unless admin

Roles: ``reader`` (get, list, watch, console), ``member`` (also create, delete and actions, in its
own project), ``admin`` (everything, every project), ``service`` (the stack's own processes).
``admin`` implies ``member``, which implies ``reader``; ``service`` implies nothing else.
Checks: ``own_project`` — a request's ``project_id`` naming another project, or ``all_projects``
set, needs the admin role.

The api refuses to start (``PolicyError``, naming the methods) when a method it serves has no rule,
a rule names an unknown role, check or method, or ``own_project`` is set on a method whose request
has neither field. Which resources a caller sees within a method stays with the managers (another
project's server is NOT_FOUND); this module only decides who may call what.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from services.core.context import ADMIN_ROLE, MEMBER_ROLE, READER_ROLE, SERVICE_ROLE, RequestContext
from services.core.errors import PermissionDenied

DEFAULT_FILE = Path(__file__).with_name("policy.toml")
# A role -> the roles holding it grants (itself included).
IMPLIES: dict[str, frozenset[str]] = {
    READER_ROLE: frozenset({READER_ROLE}),
    MEMBER_ROLE: frozenset({MEMBER_ROLE, READER_ROLE}),
    ADMIN_ROLE: frozenset({ADMIN_ROLE, MEMBER_ROLE, READER_ROLE}),
    SERVICE_ROLE: frozenset({SERVICE_ROLE}),
}
OWN_PROJECT = "own_project"
CHECKS = frozenset({OWN_PROJECT})
SCOPE_FIELDS = ("project_id", "all_projects")


class PolicyError(ValueError):
    """The policy cannot be used: the api must not start with it."""


@dataclass(frozen=True, slots=True)
class Rule:
    role: str
    own_project: bool = False
    source: str = ""  # the file it came from, for messages


def parse_rule(text: str, source: str = "") -> Rule:
    """``"member own_project"`` -> Rule; ValueError naming what is unknown."""
    words = text.split()
    if not words:
        raise ValueError("is empty (expected a role: " + ", ".join(sorted(IMPLIES)) + ")")
    role, checks = words[0], words[1:]
    if role not in IMPLIES:
        raise ValueError(f"names an unknown role {role!r} (known: {', '.join(sorted(IMPLIES))})")
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"names an unknown check {unknown[0]!r} (known: {', '.join(sorted(CHECKS))})")
    return Rule(role, OWN_PROJECT in checks, source)


def granted(roles: Iterable[str]) -> frozenset[str]:
    """The roles a caller holding ``roles`` has, implied ones included (unknown names grant only themselves)."""
    out: set[str] = set()
    for role in roles:
        out |= IMPLIES.get(role, {role})
    return frozenset(out)


def read_rules(path: Path) -> dict[str, Rule]:
    """``/package.Service/Method`` -> Rule from one file; PolicyError listing every problem in it."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {path}: {exc}") from exc
    problems = [f"unknown top-level key {k!r} (only [methods.\"<package.Service>\"] tables)" for k in data if
                k != "methods"]  # fmt: skip
    rules: dict[str, Rule] = {}
    services: Any = data.get("methods", {})
    if not isinstance(services, dict):
        problems.append("'methods' must be a table of [methods.\"<package.Service>\"] tables")
        services = {}
    for service, methods in services.items():
        if not isinstance(methods, dict):
            problems.append(f'methods.{service!r} must be a table of Method = "rule"')
            continue
        for method, text in methods.items():
            name = f"/{service}/{method}"
            try:
                if not isinstance(text, str):
                    raise ValueError("must be a string")
                rules[name] = parse_rule(text, str(path))
            except ValueError as exc:
                problems.append(f"rule for {name} {exc}")
    if problems:
        raise PolicyError(f"policy file {path}: " + "; ".join(problems))
    return rules


def method_name(service: ServiceDescriptor, method: MethodDescriptor) -> str:
    return f"/{service.full_name}/{method.name}"


class Policy:
    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.rules = dict(rules)

    @classmethod
    def load(cls, override: Path | None = None, default: Path = DEFAULT_FILE) -> Policy:
        """The shipped rules, each replaced by the operator's rule for the same method if any."""
        rules = read_rules(default)
        if override is not None:
            rules.update(read_rules(override))
        return cls(rules)

    def check_served(self, services: Iterable[ServiceDescriptor]) -> None:
        """Refuses (PolicyError naming them) methods without a rule, rules for methods not served and
        ``own_project`` where the request cannot name a project."""
        served = {method_name(s, m): m for s in services for m in s.methods}
        missing = sorted(name for name in served if name not in self.rules)
        problems = []
        if missing:
            problems.append(f"no policy rule for {', '.join(missing)} (add one to {DEFAULT_FILE.name})")
        unknown = sorted(name for name in self.rules if name not in served)
        if unknown:
            where = sorted({self.rules[n].source for n in unknown})
            problems.append(f"rules for methods this api does not serve: {', '.join(unknown)} (in {', '.join(where)})")
        for name, method in sorted(served.items()):
            rule = self.rules.get(name)
            if rule and rule.own_project and not _can_name_project(method):
                problems.append(f"rule for {name} has {OWN_PROJECT} but its request has no project_id/all_projects")
        if problems:
            raise PolicyError("; ".join(problems))

    def authorize(self, method: str, ctx: RequestContext, request: Message | None) -> None:
        """Raises PermissionDenied unless ``ctx`` may call ``method`` with ``request`` (None for a
        client stream)."""
        short = method.rsplit("/", 1)[-1]
        rule = self.rules.get(method)
        if rule is None:  # check_served keeps this from happening; deny if it does
            raise PermissionDenied(f"{short} has no policy rule", reason="NO_POLICY_RULE")
        held = granted(ctx.roles)
        if rule.role not in held:
            raise PermissionDenied(f"{short} needs the {rule.role} role", reason=f"{rule.role.upper()}_REQUIRED")
        if rule.own_project and ADMIN_ROLE not in held:
            _check_own_project(short, ctx, request)


def _can_name_project(method: MethodDescriptor) -> bool:
    fields = method.input_type.fields_by_name
    return not method.client_streaming and any(f in fields for f in SCOPE_FIELDS)


def _check_own_project(short: str, ctx: RequestContext, request: Message | None) -> None:
    if request is None:
        raise PermissionDenied(f"{short} needs the admin role", reason="ADMIN_REQUIRED")
    fields = request.DESCRIPTOR.fields_by_name
    if "all_projects" in fields and getattr(request, "all_projects", False):
        raise PermissionDenied("all_projects needs the admin role", reason="ADMIN_REQUIRED")
    project_id = getattr(request, "project_id", "") if "project_id" in fields else ""
    if project_id and project_id != ctx.project_id:
        raise PermissionDenied(f"{short} of another project needs the admin role", reason="ADMIN_REQUIRED")

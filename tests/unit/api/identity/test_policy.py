"""The method gate: rules, roles and their implications, project scope, the start-up check, and
the bearer authenticator in front of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from services.api.identity.auth import BearerAuthenticator
from services.api.identity.policy import DEFAULT_FILE, Policy, PolicyError, Rule, granted, parse_rule, read_rules
from services.api.main import build
from services.api.settings import ApiSettings
from services.core import context
from services.core.context import RequestContext
from services.core.errors import PermissionDenied, Unauthenticated
from services.core.etcd import Store
from services.core.tokens import TokenFile, add_token
from stratus.v1 import placement_pb2, servers_pb2, tokens_pb2

READER = RequestContext("p1", "r", frozenset({"reader"}))
MEMBER = RequestContext("p1", "m", frozenset({"member"}))
ADMIN = RequestContext("admin", "a", frozenset({"admin"}))
SERVICE = RequestContext("service", "s", frozenset({"service"}))
SERVERS = servers_pb2.DESCRIPTOR.services_by_name["Servers"]


def served_names(tmp_path: Path, **settings: object) -> list[str]:
    _, spec = build(ApiSettings(state_dir=tmp_path, **settings), Store(["127.0.0.1:1"]))  # type: ignore[arg-type]
    return list(spec.service_names)


def test_rules_parse_roles_and_checks() -> None:
    assert parse_rule("reader") == Rule("reader")
    assert parse_rule("  member   own_project ") == Rule("member", own_project=True)
    for bad, why in (("", "empty"), ("root", "unknown role 'root'"), ("reader everywhere", "unknown check")):
        with pytest.raises(ValueError, match=why):
            parse_rule(bad)


def test_admin_implies_member_implies_reader_and_service_implies_nothing() -> None:
    assert granted(["admin"]) == {"admin", "member", "reader"}
    assert granted(["member"]) == {"member", "reader"}
    assert granted(["reader"]) == {"reader"}
    assert granted(["service"]) == {"service"}
    assert granted(["custom"]) == {"custom"}


def test_the_gate_by_persona() -> None:
    policy = Policy.load()
    cases = {
        "/stratus.v1.Servers/GetServer": {READER, MEMBER, ADMIN},
        "/stratus.v1.Servers/GetServerConsoleOutput": {READER, MEMBER, ADMIN},
        "/stratus.v1.Servers/CreateServer": {MEMBER, ADMIN},
        "/stratus.v1.Servers/RebootServer": {MEMBER, ADMIN},
        "/stratus.v1.Flavors/CreateFlavor": {ADMIN},
        "/stratus.v1.Tokens/CreateToken": {ADMIN},
        "/stratus.imagestore.v1.ImageStore/ReadImage": {SERVICE},
    }
    for method, allowed in cases.items():
        for ctx in (READER, MEMBER, ADMIN, SERVICE):
            if ctx in allowed:
                policy.authorize(method, ctx, None)
            else:
                with pytest.raises(PermissionDenied) as info:
                    policy.authorize(method, ctx, None)
                assert info.value.reason.endswith("_REQUIRED"), method


def test_a_method_without_a_rule_is_denied_at_call_time_too() -> None:
    with pytest.raises(PermissionDenied) as info:
        Policy({}).authorize("/stratus.v1.Servers/GetServer", ADMIN, None)
    assert info.value.reason == "NO_POLICY_RULE"


def test_own_project_scope_needs_admin_for_another_project_or_all_projects() -> None:
    policy = Policy.load()
    policy.authorize("/stratus.v1.Servers/ListServers", READER, servers_pb2.ListServersRequest())
    with pytest.raises(PermissionDenied, match="all_projects"):
        policy.authorize("/stratus.v1.Servers/ListServers", MEMBER, servers_pb2.ListServersRequest(all_projects=True))
    policy.authorize("/stratus.v1.Servers/ListServers", ADMIN, servers_pb2.ListServersRequest(all_projects=True))
    scoped = Policy({"/stratus.v1.Placement/ExplainPlacement": Rule("member", own_project=True)})
    own = placement_pb2.ExplainPlacementRequest(project_id="p1")
    scoped.authorize("/stratus.v1.Placement/ExplainPlacement", MEMBER, own)
    with pytest.raises(PermissionDenied, match="another project"):
        scoped.authorize("/stratus.v1.Placement/ExplainPlacement", MEMBER, placement_pb2.ExplainPlacementRequest(
            project_id="p2"))  # fmt: skip
    with pytest.raises(PermissionDenied):  # a client stream: no request to look at, so admin only
        scoped.authorize("/stratus.v1.Placement/ExplainPlacement", MEMBER, None)


def test_the_shipped_policy_covers_every_method_the_api_serves(tmp_path: Path) -> None:
    names = served_names(tmp_path)
    assert "stratus.v1.Tokens" in names
    policy = Policy.load()
    services = [descriptor_pool.Default().FindServiceByName(n) for n in names]
    policy.check_served(services)
    served = {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}
    assert served == set(policy.rules)


def test_a_missing_rule_refuses_naming_the_methods() -> None:
    rules = read_rules(DEFAULT_FILE)
    del rules["/stratus.v1.Servers/CreateServer"], rules["/stratus.v1.Servers/GetServer"]
    with pytest.raises(PolicyError, match=r"no policy rule for /stratus.v1.Servers/CreateServer, .*GetServer"):
        Policy(rules).check_served([SERVERS])


def test_rules_for_unknown_methods_or_misplaced_checks_refuse() -> None:
    rules = {f"/stratus.v1.Servers/{m.name}": Rule("member") for m in SERVERS.methods}
    with pytest.raises(PolicyError, match=r"does not serve: /stratus\.v1\.Servers/GetSever"):
        Policy({**rules, "/stratus.v1.Servers/GetSever": Rule("reader")}).check_served([SERVERS])
    with pytest.raises(PolicyError, match="GetServer has own_project but its request has no project_id"):
        Policy({**rules, "/stratus.v1.Servers/GetServer": Rule("reader", True)}).check_served([SERVERS])


def test_an_operator_file_replaces_rules_per_method(tmp_path: Path) -> None:
    override = tmp_path / "policy.toml"
    override.write_text('[methods."stratus.v1.Servers"]\nGetServer = "member"\n')
    policy = Policy.load(override)
    assert policy.rules["/stratus.v1.Servers/GetServer"] == Rule("member", source=str(override))
    assert policy.rules["/stratus.v1.Servers/ListServers"].role == "reader"
    with pytest.raises(PermissionDenied):
        policy.authorize("/stratus.v1.Servers/GetServer", READER, None)


def test_the_api_refuses_to_start_on_a_bad_operator_file(tmp_path: Path) -> None:
    override = tmp_path / "policy.toml"
    override.write_text('[methods."stratus.v1.Servers"]\nGetServer = "superuser"\nNoSuchMethod = "reader"\n')
    with pytest.raises(SystemExit, match="unknown role 'superuser'"):
        served_names(tmp_path, policy_file=override)
    override.write_text('[methods."stratus.v1.Servers"]\nNoSuchMethod = "reader"\n')
    with pytest.raises(SystemExit, match=r"api refuses to start: .*/stratus.v1.Servers/NoSuchMethod"):
        served_names(tmp_path, policy_file=override)
    override.write_text("not toml [")
    with pytest.raises(SystemExit, match="policy file"):
        served_names(tmp_path, policy_file=override)


def test_nothing_bound_grants_nothing() -> None:
    async def unbound() -> None:
        context.current()

    with pytest.raises(context.NoRequestContext):
        asyncio.run(unbound())
    with context.bound(context.system("p9")) as ctx:
        assert context.current() is ctx and ctx.is_admin and ctx.project_id == "p9"


async def test_bearer_auth_then_policy(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin = add_token(path, "admin", "admin", "admin", ["admin"])
    member = add_token(path, "demo", "demo", "demo", ["member"])
    service = add_token(path, "service", "service", "stratus-service", ["service"])
    auth = BearerAuthenticator(Policy.load(), TokenFile(path))
    create_flavor = "/stratus.v1.Flavors/CreateFlavor"
    assert (await auth(create_flavor, {"authorization": f"Bearer {admin}"}, None)).is_admin
    listed = await auth("/stratus.v1.Servers/ListServers", {"authorization": f"bearer {member}"},
                        servers_pb2.ListServersRequest())  # fmt: skip
    assert listed.project_id == "demo"
    with pytest.raises(PermissionDenied):
        await auth(create_flavor, {"authorization": f"Bearer {member}"}, None)
    for metadata in ({}, {"authorization": "Bearer"}, {"authorization": f"Token {admin}"},
                     {"authorization": "Bearer 0190c2a4-0000-7000-8000-000000000000.x"}):  # fmt: skip
        with pytest.raises(Unauthenticated):
            await auth(create_flavor, metadata, None)
    read_image = "/stratus.imagestore.v1.ImageStore/ReadImage"
    assert (await auth(read_image, {"authorization": f"Bearer {service}"}, None)).user_id == "stratus-service"
    for token in (admin, member):
        with pytest.raises(PermissionDenied) as info:
            await auth(read_image, {"authorization": f"Bearer {token}"}, None)
        assert info.value.reason == "SERVICE_REQUIRED"
    with pytest.raises(PermissionDenied):  # the service role is not admin, nor reader
        await auth("/stratus.v1.Servers/ListServers", {"authorization": f"Bearer {service}"}, None)
    with pytest.raises(PermissionDenied):
        await auth("/stratus.v1.Tokens/CreateToken", {"authorization": f"Bearer {member}"},
                   tokens_pb2.CreateTokenRequest())  # fmt: skip

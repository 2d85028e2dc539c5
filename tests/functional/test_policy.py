"""The policy on a real stack: every method the api serves (found through gRPC reflection, so a new
one is covered the day it is added) called by each persona, all made through Tokens/CreateToken:
a reader, a member, another project's member and an admin, plus the stack's service token and no
token at all. The gate is judged by the code alone: a refused call is PERMISSION_DENIED; a call
let through may still fail in the manager (NOT_FOUND, INVALID_ARGUMENT: the requests are empty or
name nothing), which counts as passing the gate.

Then what the gate does not decide: another project's resources are NOT_FOUND, a reader can read
but not delete its project's resources, all_projects needs admin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message import Message

from services.api.identity.policy import Policy
from stratus.v1 import servergroups_pb2, servers_pb2, tokens_pb2, tokens_pb2_grpc
from tests.support.methods import DENIED, REFUSED, Method, call, served_methods
from tests.support.stack import Stack

# The test's own idea of who may call what, from the method's name (the policy file is what is
# tested, so it is not read for this): reads need reader, these need admin, the rest member.
READ_VERBS = ("Get", "List", "Watch", "Download")
ADMIN_SERVICES = frozenset({"stratus.v1.Services", "stratus.v1.Hosts", "stratus.v1.Aggregates",
                            "stratus.v1.Placement", "stratus.v1.Tokens"})  # fmt: skip
ADMIN_METHODS = frozenset({"/stratus.v1.Flavors/CreateFlavor", "/stratus.v1.Flavors/DeleteFlavor",
                           "/stratus.v1.Servers/EvacuateServer", "/stratus.v1.Quotas/UpdateQuotaSet"})  # fmt: skip
SERVICE_SERVICES = frozenset({"stratus.imagestore.v1.ImageStore"})


def level_of(method: Method) -> str:
    if method.service in SERVICE_SERVICES:
        return "service"
    if method.service in ADMIN_SERVICES or method.path in ADMIN_METHODS:
        return "admin"
    return "reader" if method.name.startswith(READ_VERBS) else "member"


GRANTS = {
    "reader": {"reader"},
    "member": {"reader", "member"},
    "other_member": {"reader", "member"},
    "admin": {"reader", "member", "admin"},
    "service": {"service"},
    "nobody": set(),
}


@dataclass
class Personas:
    project: str
    other_project: str
    tokens: dict[str, str | None]

    def md(self, who: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]


def create_token(stack: Stack, project: str, user: str, *roles: str) -> str:
    req = tokens_pb2.CreateTokenRequest(project_id=project, user_id=user, roles=roles)
    reply = tokens_pb2_grpc.TokensStub(stack.channel).CreateToken(req, metadata=stack.md())
    return str(reply.token)


@pytest.fixture(scope="module")
def personas(stack: Stack) -> Iterator[Personas]:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"pol-a-{suffix}", f"pol-b-{suffix}"
    tokens: dict[str, str | None] = {
        "reader": create_token(stack, a, "ann", "reader"),
        "member": create_token(stack, a, "max", "member"),
        "other_member": create_token(stack, b, "bea", "member"),
        "admin": create_token(stack, "ops", "root", "admin"),
        "service": (stack.state_dir / "service.token").read_text().strip(),
        "nobody": None,
    }
    yield Personas(a, b, tokens)


def test_every_served_method_has_a_shipped_rule(stack: Stack) -> None:
    assert stack.channel is not None
    served = {m.path for m in served_methods(stack.channel)}
    assert "/stratus.v1.Tokens/CreateToken" in served
    assert served == set(Policy.load().rules), "the api serves methods the shipped policy does not name, or not"


def test_every_method_by_every_persona(stack: Stack, personas: Personas) -> None:
    assert stack.channel is not None
    wrong = []
    for method in served_methods(stack.channel):
        for who, grants in GRANTS.items():
            code = call(stack.channel, method, personas.tokens[who])
            if who == "nobody":
                ok = code == grpc.StatusCode.UNAUTHENTICATED
            elif level_of(method) in grants:
                ok = code not in REFUSED
            else:
                ok = code == DENIED
            if not ok:
                wrong.append(f"{method.path} ({level_of(method)}) as {who}: {code.name}")
    assert not wrong, "\n".join(wrong)


def test_all_projects_needs_admin(stack: Stack, personas: Personas) -> None:
    everything = servers_pb2.ListServersRequest(all_projects=True)
    for who in ("reader", "member"):
        with pytest.raises(grpc.RpcError) as info:
            stack.servers.ListServers(everything, metadata=personas.md(who))
        assert info.value.code() == DENIED  # type: ignore[attr-defined]
    stack.servers.ListServers(everything, metadata=personas.md("admin"))


def code_of(fn: object, request: Message, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    try:
        fn(request, metadata=metadata)  # type: ignore[operator]
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def test_another_projects_resources_are_not_found_and_a_reader_reads_only(stack: Stack, personas: Personas) -> None:
    groups = stack.server_groups
    new = servergroups_pb2.CreateServerGroupRequest(
        server_group=servergroups_pb2.ServerGroup(name="g", policy=servergroups_pb2.SERVER_GROUP_POLICY_AFFINITY)
    )
    group = groups.CreateServerGroup(new, metadata=personas.md("member"))
    assert group.project_id == personas.project
    get, delete = (
        servergroups_pb2.GetServerGroupRequest(id=group.id),
        servergroups_pb2.DeleteServerGroupRequest(id=group.id),
    )
    assert code_of(groups.GetServerGroup, get, personas.md("reader")) == grpc.StatusCode.OK
    assert code_of(groups.GetServerGroup, get, personas.md("other_member")) == grpc.StatusCode.NOT_FOUND
    assert code_of(groups.DeleteServerGroup, delete, personas.md("other_member")) == grpc.StatusCode.NOT_FOUND
    assert code_of(groups.DeleteServerGroup, delete, personas.md("reader")) == DENIED
    assert code_of(groups.DeleteServerGroup, delete, personas.md("member")) == grpc.StatusCode.OK

    server = servers_pb2.Server(name="mine", flavor_id="m1.tiny", image_id="tiny")
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=server), metadata=personas.md("member"))
    sid = servers_pb2.GetServerRequest(id=created.id)
    assert code_of(stack.servers.GetServer, sid, personas.md("reader")) == grpc.StatusCode.OK
    assert code_of(stack.servers.GetServer, sid, personas.md("other_member")) == grpc.StatusCode.NOT_FOUND
    listed = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=personas.md("other_member"))
    assert created.id not in {s.id for s in listed.servers}
    stop = servers_pb2.StopServerRequest(id=created.id)
    assert code_of(stack.servers.StopServer, stop, personas.md("reader")) == DENIED
    assert code_of(stack.servers.StopServer, stop, personas.md("other_member")) == grpc.StatusCode.NOT_FOUND
    # the build flow runs as the system in the server's project, although its caller has gone
    active = wait_status(stack, created.id, personas.md("member"), "ACTIVE")
    assert (active.project_id, active.user_id) == (personas.project, "max")
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=created.id), metadata=personas.md("member"))
    stack.wait_gone(created.id)


def wait_status(stack: Stack, server_id: str, metadata: list[tuple[str, str]], status: str) -> servers_pb2.Server:
    watch = stack.servers.WatchServers(servers_pb2.WatchServersRequest(id=server_id), metadata=metadata, timeout=60)
    try:
        for event in watch:
            name = servers_pb2.ServerStatus.Name(event.server.status).removeprefix("SERVER_STATUS_")
            if name == status and event.server.task_state == 0:
                server: servers_pb2.Server = event.server
                return server
            assert name != "ERROR", f"{event.server}\n{stack.log_tail()}"
    finally:
        watch.cancel()
    raise AssertionError(f"server {server_id} never became {status}")

"""Keypairs through the public API: per user, and a server's key reaching its compute."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest

from services.core.tokens import add_token
from stratus.v1 import keypairs_pb2, servers_pb2
from tests.functional.test_cli_actions import ok_json, stratus
from tests.functional.test_errors import error_reason, fails, field_violations
from tests.support import ssh_keys
from tests.support.stack import Stack

Md = list[tuple[str, str]]
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[str, Md]:
    """Two members of one project, and a member of another; each its own token."""
    tokens = stack.state_dir / "tokens.json"
    made = {
        "alice": add_token(tokens, "kp-alice", "kp-project", "alice", ["member"]),
        "bob": add_token(tokens, "kp-bob", "kp-project", "bob", ["member"]),
        "carol": add_token(tokens, "kp-carol", "kp-other", "carol", ["member"]),
    }
    return {who: [("authorization", f"Bearer {token}")] for who, token in made.items()}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(stack: Stack, md: Md, name: str, key: str = ssh_keys.ED25519) -> keypairs_pb2.Keypair:
    request = keypairs_pb2.CreateKeypairRequest(name=name, public_key=key)
    return stack.keypairs.CreateKeypair(request, metadata=md)  # type: ignore[no-any-return]


def names(stack: Stack, md: Md) -> list[str]:
    return [k.name for k in stack.keypairs.ListKeypairs(keypairs_pb2.ListKeypairsRequest(), metadata=md).keypairs]


def get(stack: Stack, md: Md, name: str) -> Callable[[], object]:
    return lambda: stack.keypairs.GetKeypair(keypairs_pb2.GetKeypairRequest(name=name), metadata=md)


def delete(stack: Stack, md: Md, name: str) -> Callable[[], object]:
    return lambda: stack.keypairs.DeleteKeypair(keypairs_pb2.DeleteKeypairRequest(name=name), metadata=md)


def test_create_list_get_delete(stack: Stack, users: dict[str, Md]) -> None:
    alice, name = users["alice"], unique("laptop")
    made = create(stack, alice, name, ssh_keys.RSA2048 + " alice@laptop")
    assert (made.name, made.type, made.fingerprint) == (name, "ssh-rsa", ssh_keys.RSA2048_FINGERPRINT)
    assert (made.user_id, made.project_id) == ("alice", "kp-project")
    assert get(stack, alice, name)() == made
    assert name in names(stack, alice)
    delete(stack, alice, name)()
    fails(get(stack, alice, name), NOT_FOUND)
    fails(delete(stack, alice, name), NOT_FOUND)
    assert name not in names(stack, alice)


def test_another_users_keypair_is_not_found(stack: Stack, users: dict[str, Md]) -> None:
    name = unique("mine")
    create(stack, users["alice"], name)
    try:
        for other in ("bob", "carol"):
            md = users[other]
            err = fails(get(stack, md, name), NOT_FOUND)
            assert error_reason(err) == "NOT_FOUND"
            fails(delete(stack, md, name), NOT_FOUND)
            assert name not in names(stack, md)
            fails(get(stack, stack.md(), name), NOT_FOUND)  # not even the admin's own view has it
        bobs = create(stack, users["bob"], name, ssh_keys.ECDSA384)  # same name, another user: no clash
        assert (bobs.user_id, bobs.type) == ("bob", "ecdsa-sha2-nistp384")
        assert get(stack, users["alice"], name)().type == "ssh-ed25519"  # type: ignore[attr-defined]
        delete(stack, users["bob"], name)()
    finally:
        delete(stack, users["alice"], name)()


def test_duplicate_name_already_exists(stack: Stack, users: dict[str, Md]) -> None:
    name = unique("dup")
    create(stack, users["alice"], name)
    try:
        err = fails(lambda: create(stack, users["alice"], name, ssh_keys.ECDSA256), grpc.StatusCode.ALREADY_EXISTS)
        assert error_reason(err) == "KEYPAIR_EXISTS"
    finally:
        delete(stack, users["alice"], name)()


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (ssh_keys.RSA1024, "at least 2048 bits"),
        (ssh_keys.DSA, "unsupported key type"),
        ("ssh-ed25519 !!!", "not valid base64"),
        ("ssh-ed25519 " + ssh_keys.RSA2048.split()[1], "'ssh-rsa' key, not 'ssh-ed25519'"),
        (ssh_keys.ED25519 + "\n", "control"),
        ("ssh-rsa " + "A" * 20_000, "at most 16384"),
    ],
)
def test_bad_keys_are_invalid_argument_on_public_key(stack: Stack, users: dict[str, Md], key: str, why: str) -> None:
    err = fails(lambda: create(stack, users["alice"], unique("bad"), key), grpc.StatusCode.INVALID_ARGUMENT)
    violations = field_violations(err)
    assert list(violations) == ["public_key"]
    assert why in violations["public_key"]


def test_bad_name_is_invalid_argument_on_name(stack: Stack, users: dict[str, Md]) -> None:
    err = fails(lambda: create(stack, users["alice"], "no/slashes"), grpc.StatusCode.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["name"]


def server_request(name: str, key_name: str, request_id: str = "") -> servers_pb2.CreateServerRequest:
    server = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", key_name=key_name)
    return servers_pb2.CreateServerRequest(server=server, request_id=request_id)


def console(stack: Stack, md: Md, server_id: str) -> str:
    request = servers_pb2.GetServerConsoleOutputRequest(id=server_id)
    return str(stack.servers.GetServerConsoleOutput(request, metadata=md).output)


def test_server_key_reaches_the_compute_and_outlives_the_keypair(stack: Stack, users: dict[str, Md]) -> None:
    alice, key_name = users["alice"], unique("boot key")
    create(stack, alice, key_name, ssh_keys.ED25519 + " alice@laptop")
    server = stack.servers.CreateServer(server_request(unique("keyed"), key_name), metadata=alice)
    try:
        assert server.key_name == key_name
        stack.wait_for_server(server.id, {"ACTIVE"})
        assert f"fake authorized key {key_name}: {ssh_keys.ED25519} alice@laptop\n" in console(stack, alice, server.id)
        delete(stack, alice, key_name)()  # the server keeps its copy
        got = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=alice)
        assert got.key_name == key_name
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=alice)
        stack.wait_gone(server.id)


def server_names(stack: Stack, md: Md) -> set[str]:
    request = servers_pb2.ListServersRequest(page_size=1000)
    return {s.name for s in stack.servers.ListServers(request, metadata=md).servers}


def test_unknown_key_name_is_not_found_before_anything_is_written(stack: Stack, users: dict[str, Md]) -> None:
    alice, name, request_id = users["alice"], unique("nokey"), unique("req")
    err = fails(lambda: stack.servers.CreateServer(server_request(name, "no-such-key", request_id), metadata=alice),
                NOT_FOUND)  # fmt: skip
    assert field_violations(err) == {"server.key_name": "no such keypair"}
    assert name not in server_names(stack, alice)
    # the request_id was not taken: the same id with another body is a new server, not ALREADY_EXISTS
    server = stack.servers.CreateServer(server_request(name, "", request_id), metadata=alice)
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=alice)
    stack.wait_gone(server.id)


def test_another_users_key_name_is_not_found(stack: Stack, users: dict[str, Md]) -> None:
    key_name = unique("alices")
    create(stack, users["alice"], key_name)
    try:
        err = fails(lambda: stack.servers.CreateServer(server_request(unique("s"), key_name), metadata=users["bob"]),
                    NOT_FOUND)  # fmt: skip
        assert "server.key_name" in field_violations(err)
    finally:
        delete(stack, users["alice"], key_name)()


def test_cli_keypair_commands(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    pub = tmp_path_factory.mktemp("keys") / "id_ecdsa.pub"
    pub.write_text(ssh_keys.ECDSA256 + " cli@test\n")
    name = unique("cli")
    made = ok_json(stack, "keypair", "create", name, "--public-key", str(pub))
    assert (made["name"], made["fingerprint"]) == (name, ssh_keys.ECDSA256_FINGERPRINT)
    assert name in [k["name"] for k in ok_json(stack, "keypair", "list")]
    assert ok_json(stack, "keypair", "show", name)["public_key"] == ssh_keys.ECDSA256 + " cli@test"
    server = ok_json(stack, "server", "create", unique("cli-keyed"), "--flavor", "m1.tiny", "--image", "tiny",
                     "--key-name", name, "--wait")  # fmt: skip
    assert server["key_name"] == name
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server["id"]), metadata=stack.md())
    stack.wait_gone(server["id"])
    out = stratus(stack, "keypair", "delete", name, "never-made")
    assert out.returncode == 1
    assert f"keypair {name} deleted" in out.stdout.decode() and b"NOT_FOUND" in out.stderr
    assert name not in [k["name"] for k in ok_json(stack, "keypair", "list")]

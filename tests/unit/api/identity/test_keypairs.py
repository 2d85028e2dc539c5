"""The keypairs manager against a real etcd: per-user scope, names, keys, paging."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.api.identity import keypairs
from services.api.identity.keypairs import KeypairsManager, instance_key
from services.api.quotas.quota import Quotas
from services.api.settings import QuotaDefaults
from services.api.validation import NAME_MAX, Violations
from services.core import context, keys
from services.core.context import RequestContext
from services.core.errors import AlreadyExists, InvalidArgument, NotFound, QuotaExceeded
from services.core.etcd import Store
from stratus.v1 import keypairs_pb2
from tests.support import ssh_keys

ALICE = RequestContext("proj-a", "alice", frozenset({"member"}))
BOB = RequestContext("proj-a", "bob", frozenset({"member"}))
ALICE_ELSEWHERE = RequestContext("proj-b", "alice", frozenset({"member"}))


@contextmanager
def acting_as(ctx: RequestContext) -> Iterator[None]:
    token = context.bind(ctx)
    try:
        yield
    finally:
        context.unbind(token)


def manager(store: Store, **limits: int) -> KeypairsManager:
    return KeypairsManager(store, Quotas(store, {**QuotaDefaults().model_dump(), **limits}))


def fields(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [field for field, _ in err.value.violations]


async def test_create_get_list_delete(store: Store) -> None:
    m = manager(store)
    with acting_as(ALICE):
        created = await m.create("laptop", ssh_keys.ED25519 + " alice@laptop")
        assert (created.name, created.type) == ("laptop", "ssh-ed25519")
        assert created.fingerprint == ssh_keys.ED25519_FINGERPRINT
        assert (created.user_id, created.project_id) == ("alice", "proj-a")
        assert created.public_key == ssh_keys.ED25519 + " alice@laptop"
        assert created.created_at.seconds > 0
        assert await m.get("laptop") == created
        assert list((await m.list(keypairs_pb2.ListKeypairsRequest())).keypairs) == [created]
        await m.delete("laptop")
        with pytest.raises(NotFound, match="keypair 'laptop' not found"):
            await m.get("laptop")
        with pytest.raises(NotFound):
            await m.delete("laptop")
        assert not (await m.list(keypairs_pb2.ListKeypairsRequest())).keypairs
    assert not (await store.read_all(keys.KEYPAIRS, most=100_000))[0]


async def test_duplicate_name_already_exists(store: Store) -> None:
    m = manager(store)
    with acting_as(ALICE):
        await m.create("k", ssh_keys.ED25519)
        with pytest.raises(AlreadyExists, match="keypair 'k' already exists") as err:
            await m.create("k", ssh_keys.RSA2048)
        assert err.value.reason == "KEYPAIR_EXISTS"
        assert (await m.get("k")).type == "ssh-ed25519"


async def test_another_users_keypair_is_not_there(store: Store) -> None:
    m = manager(store)
    with acting_as(ALICE):
        await m.create("shared-name", ssh_keys.ED25519)
    for other in (BOB, ALICE_ELSEWHERE):
        with acting_as(other):
            with pytest.raises(NotFound):
                await m.get("shared-name")
            with pytest.raises(NotFound):
                await m.delete("shared-name")
            with pytest.raises(NotFound):
                await instance_key(store, "shared-name")
            assert not (await m.list(keypairs_pb2.ListKeypairsRequest())).keypairs
    with acting_as(BOB):
        mine = await m.create("shared-name", ssh_keys.ECDSA256)  # the same name, another user: no clash
    with acting_as(ALICE):
        assert (await m.get("shared-name")).type == "ssh-ed25519"
    assert mine.user_id == "bob"


@pytest.mark.parametrize(
    "name",
    ["", " lead", "trail ", "a/b", "tab\there", "semi;colon", "é", "x" * (NAME_MAX + 1), "\u202eevil"],
)
async def test_bad_names_refused(store: Store, name: str) -> None:
    with acting_as(ALICE), pytest.raises(InvalidArgument) as err:
        await manager(store).create(name, ssh_keys.ED25519)
    assert fields(err) == ["name"]


@pytest.mark.parametrize("name", ["a", "my key", "alice@laptop", "k_1-2.3", "x" * NAME_MAX])
async def test_nova_names_accepted(store: Store, name: str) -> None:
    with acting_as(ALICE):
        assert (await manager(store).create(name, ssh_keys.RSA4096)).name == name


async def test_bad_key_and_bad_name_both_named(store: Store) -> None:
    with acting_as(ALICE), pytest.raises(InvalidArgument) as err:
        await manager(store).create("no/slash", ssh_keys.RSA1024)
    assert fields(err) == ["name", "public_key"]
    assert "at least 2048 bits" in str(err.value)
    assert not (await store.read_all(keys.KEYPAIRS, most=100_000))[0]


async def test_paging(store: Store) -> None:
    m = manager(store)
    with acting_as(ALICE):
        for name in ("c", "a", "b"):
            await m.create(name, ssh_keys.ED25519)
        first = await m.list(keypairs_pb2.ListKeypairsRequest(page_size=2))
        assert [k.name for k in first.keypairs] == ["a", "b"]
        second = await m.list(keypairs_pb2.ListKeypairsRequest(page_size=2, page_token=first.next_page_token))
        assert ([k.name for k in second.keypairs], second.next_page_token) == (["c"], "")
    with acting_as(BOB), pytest.raises(InvalidArgument) as err:  # alice's token is not bob's to use
        await m.list(keypairs_pb2.ListKeypairsRequest(page_token=first.next_page_token))
    assert fields(err) == ["page_token"]


async def test_instance_key_is_a_copy_and_names_the_field(store: Store) -> None:
    with acting_as(ALICE):
        await manager(store).create("k", ssh_keys.ECDSA521 + " me")
        copy = await instance_key(store, "k")
        assert (copy.name, copy.public_key) == ("k", ssh_keys.ECDSA521 + " me")
        with pytest.raises(NotFound) as err:
            await instance_key(store, "missing")
    assert err.value.field == "server.key_name"


def test_check_name_reports_the_field_given() -> None:
    v = Violations()
    keypairs.check_name(v, "server.key_name", "bad/name")
    assert [f for f, _ in v.items] == ["server.key_name"]


async def test_keypairs_count_against_the_project_quota(store: Store) -> None:
    m = manager(store, keypairs=2)
    with acting_as(ALICE):
        await m.create("one", ssh_keys.ED25519)
    with acting_as(BOB):  # the quota is the project's, not the user's
        await m.create("two", ssh_keys.ED25519)
        with pytest.raises(QuotaExceeded):
            await m.create("three", ssh_keys.ED25519)
        await m.delete("two")
        await m.create("three", ssh_keys.ED25519)
    with acting_as(ALICE_ELSEWHERE):  # another project has its own
        await m.create("one", ssh_keys.ED25519)

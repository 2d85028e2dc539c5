"""Keypairs: a user's SSH public keys, imported by name, given to the servers that name them.

A keypair is a ``stratus.v1.Keypair`` under ``keypairs/<project>/<user>/<name>``: it belongs to
the calling user in the calling project, and every read is scoped to both, so another user's
keypair is simply not there (NOT_FOUND). A server created with ``key_name`` gets a copy of the
public key in its record (``state.InstanceKey``), so deleting the keypair changes no server.
"""

from __future__ import annotations

import re

from services.api import indexes, paging
from services.api.identity import ssh_keys
from services.api.quotas.quota import Quotas
from services.api.validation import NAME_MAX, Violations, page_size
from services.core import context, keys, retry
from services.core.errors import AlreadyExists, InvalidArgument, NotFound, shorten
from services.core.etcd import Store
from services.core.instances import now
from services.core.message_limits import fill_page_async
from stratus.state.v1 import state_pb2
from stratus.v1 import keypairs_pb2

# Nova's keypair names: letters, digits, space, '_', '-', '.', '@'; no space at either end.
NAME = re.compile(rf"^(?! )[A-Za-z0-9 _.@-]{{1,{NAME_MAX}}}(?<! )$")


def check_name(v: Violations, field: str, name: str) -> None:
    if not name:
        v.add(field, "is required")
    elif len(name) > NAME_MAX:
        v.add(field, f"must be at most {NAME_MAX} characters, got {len(name)}")
    elif not NAME.match(name):
        v.add(field, "must be letters, digits, spaces, '_', '-', '.' or '@', with no space at either end")


def new_keypair(name: str, public_key: str) -> keypairs_pb2.Keypair:
    """The caller's keypair for a CreateKeypair request; INVALID_ARGUMENT naming each bad field."""
    v = Violations()
    check_name(v, "name", name)
    key = None
    try:
        key = ssh_keys.parse(public_key)
    except ssh_keys.BadKey as exc:
        v.add("public_key", str(exc))
    v.raise_if_any()
    assert key is not None
    ctx = context.current()
    return keypairs_pb2.Keypair(
        name=name, public_key=key.line, fingerprint=key.fingerprint, type=key.type, user_id=ctx.user_id,
        project_id=ctx.project_id, created_at=now(),
    )  # fmt: skip


async def instance_key(store: Store, name: str, field: str = "server.key_name") -> state_pb2.InstanceKey:
    """The copy of the caller's keypair ``name`` a new server keeps; NOT_FOUND naming ``field``."""
    ctx = context.current()
    kv = await store.get(keys.keypair(ctx.project_id, ctx.user_id, name))
    if kv is None:
        raise NotFound("keypair", name, field=field)
    keypair = keypairs_pb2.Keypair.FromString(kv.value)
    return state_pb2.InstanceKey(name=keypair.name, public_key=keypair.public_key)


class KeypairsManager:
    def __init__(self, store: Store, quotas: Quotas) -> None:
        self._store = store
        self._quotas = quotas

    async def create(self, name: str, public_key: str) -> keypairs_pb2.Keypair:
        """One transaction: the name is free and the project's keypair quota holds."""
        keypair = new_keypair(name, public_key)
        key = keys.keypair(keypair.project_id, keypair.user_id, keypair.name)
        compares = [self._store.cmp_absent(key)]
        ops = [self._store.op_put(key, keypair.SerializeToString())]
        if not await self._quotas.commit(keypair.project_id, {"keypairs": 1}, compares, ops):
            raise AlreadyExists(f"keypair {shorten(name)!r} already exists", reason="KEYPAIR_EXISTS",
                                metadata={"name": shorten(name)})  # fmt: skip
        return keypair

    def _key(self, name: str) -> str:
        if not name:
            raise InvalidArgument([("name", "is required")])
        ctx = context.current()
        return keys.keypair(ctx.project_id, ctx.user_id, name)

    async def get(self, name: str) -> keypairs_pb2.Keypair:
        kv = await self._store.get(self._key(name))
        if kv is None:
            raise NotFound("keypair", name)
        return keypairs_pb2.Keypair.FromString(kv.value)

    async def list(self, req: keypairs_pb2.ListKeypairsRequest) -> keypairs_pb2.ListKeypairsResponse:
        limit = page_size(req.page_size)
        ctx = context.current()
        prefix = keys.keypairs_of(ctx.project_id, ctx.user_id)
        after = paging.decode(req.page_token, prefix)
        found = indexes.decoded(self._store, prefix, after, keypairs_pb2.Keypair.FromString)
        keypairs, last = await fill_page_async(found, limit)
        return keypairs_pb2.ListKeypairsResponse(keypairs=keypairs, next_page_token=paging.next_token(last))

    async def delete(self, name: str) -> None:
        """The keypair and its quota charge go in one transaction (a lost race re-reads)."""
        key = self._key(name)

        async def attempt() -> retry.Again | None:
            kv = await self._store.get(key)
            if kv is None:
                raise NotFound("keypair", name)
            project_id = context.current().project_id
            if await self._quotas.commit(project_id, {"keypairs": -1}, [self._store.cmp_mod(key, kv.mod_revision)],
                                         [self._store.op_delete(key)]):  # fmt: skip
                return None
            return retry.AGAIN

        await retry.until_done(attempt, what=f"keypair {shorten(name)!r}")

"""Issued tokens against a real etcd, with a clock the test moves: expiry, revocation (here and on
another replica), bounds, and nothing secret stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf import duration_pb2

from services.api.identity.tokens import TTL_DEFAULT_S, IssuedTokens
from services.core import context, keys
from services.core.context import RequestContext
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from services.core.etcd import Store
from stratus.v1 import tokens_pb2

ADMIN = RequestContext("admin", "root", frozenset({"admin"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tokens(store: Store, clock: Clock) -> AsyncIterator[IssuedTokens]:
    context.bind(ADMIN)
    t = IssuedTokens(store, clock=clock)
    await t.start()
    yield t
    await t.stop()


def request(ttl_s: int = 0, roles: tuple[str, ...] = ("member",)) -> tokens_pb2.CreateTokenRequest:
    return tokens_pb2.CreateTokenRequest(project_id="p1", user_id="u1", roles=roles,
                                         ttl=duration_pb2.Duration(seconds=ttl_s))  # fmt: skip


async def reason(tokens: IssuedTokens, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        await tokens.authenticate(token)
    return info.value.reason


async def test_a_token_works_until_it_expires(tokens: IssuedTokens, clock: Clock, store: Store) -> None:
    made = await tokens.create(request(ttl_s=60, roles=("reader", "member", "reader")))
    assert list(made.roles) == ["reader", "member"] and made.expires_at.seconds == int(clock.now) + 60
    ctx = await tokens.authenticate(made.token)
    assert ctx == RequestContext("p1", "u1", frozenset({"reader", "member"}))
    kv = await store.get(keys.token(made.id))
    assert kv is not None and made.token.encode() not in kv.value and kv.lease != 0
    clock.now += 59
    assert await tokens.authenticate(made.token) == ctx
    clock.now += 1
    assert await reason(tokens, made.token) == "TOKEN_EXPIRED"


async def test_default_ttl_is_a_day(tokens: IssuedTokens, clock: Clock) -> None:
    made = await tokens.create(request())
    assert made.expires_at.seconds == int(clock.now) + TTL_DEFAULT_S


async def test_revocation_is_at_once_here_and_soon_on_another_replica(
    tokens: IssuedTokens, clock: Clock, store: Store
) -> None:
    other = IssuedTokens(store, clock=clock)
    await other.start()
    try:
        made = await tokens.create(request())
        assert (await other.authenticate(made.token)) is not None  # not cached there yet: read from etcd
        revoked = await tokens.revoke(tokens_pb2.RevokeTokenRequest(id=made.id))
        assert revoked.HasField("revoked_at")
        assert await reason(tokens, made.token) == "TOKEN_REVOKED"
        assert await reason(IssuedTokens(store, clock=clock), made.token) == "TOKEN_REVOKED"  # a cold replica
        for _ in range(500):  # the warm replica: as soon as its watch brings the revocation
            try:
                await other.authenticate(made.token)
            except Unauthenticated as exc:
                assert exc.reason == "TOKEN_REVOKED"
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the other replica never saw the revocation")
        again = await tokens.revoke(tokens_pb2.RevokeTokenRequest(token=made.token))  # by the secret; idempotent
        assert again.revoked_at == revoked.revoked_at
    finally:
        await other.stop()


async def test_bad_tokens_and_revoking_unknown_ones(tokens: IssuedTokens) -> None:
    made = await tokens.create(request())
    assert await tokens.authenticate("no-dot-here") is None  # not an issued token: the file decides
    forged = made.token[:-4] + ("AAAA" if not made.token.endswith("AAAA") else "BBBB")
    assert await reason(tokens, forged) == "BAD_TOKEN"
    assert await reason(tokens, "0190c2a4-0000-7000-8000-000000000000.secret") == "BAD_TOKEN"
    with pytest.raises(NotFound):
        await tokens.revoke(tokens_pb2.RevokeTokenRequest(id="0190c2a4-0000-7000-8000-000000000000"))
    with pytest.raises(NotFound):  # the right id with the wrong secret revokes nothing
        await tokens.revoke(tokens_pb2.RevokeTokenRequest(token=forged))
    with pytest.raises(FailedPrecondition):
        await tokens.revoke(tokens_pb2.RevokeTokenRequest(token="a-bootstrap-token"))
    with pytest.raises(InvalidArgument):
        await tokens.revoke(tokens_pb2.RevokeTokenRequest())
    assert await tokens.authenticate(made.token) is not None


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (tokens_pb2.CreateTokenRequest(user_id="u", roles=["reader"]), "project_id"),
        (tokens_pb2.CreateTokenRequest(project_id="p", roles=["reader"]), "user_id"),
        (tokens_pb2.CreateTokenRequest(project_id="p", user_id="u"), "roles"),
        (tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=["service"]), "roles[0]"),
        (tokens_pb2.CreateTokenRequest(project_id="p", user_id="u", roles=["reader"] * 4), "roles"),
        (request(ttl_s=59), "ttl"),
        (request(ttl_s=30 * 86400 + 1), "ttl"),
        (request(ttl_s=-5), "ttl"),
        (tokens_pb2.CreateTokenRequest(project_id="p 1", user_id="u", roles=["reader"]), "project_id"),
    ],
)
async def test_create_is_bounded(tokens: IssuedTokens, req: tokens_pb2.CreateTokenRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await tokens.create(req)
    assert field in {f for f, _ in info.value.violations}


async def test_list_pages_and_filters_without_secrets(tokens: IssuedTokens) -> None:
    made = [await tokens.create(request()) for _ in range(3)]
    other = await tokens.create(tokens_pb2.CreateTokenRequest(project_id="p2", user_id="u", roles=["reader"]))
    first = await tokens.list(tokens_pb2.ListTokensRequest(page_size=2, project_id="p1"))
    rest = await tokens.list(
        tokens_pb2.ListTokensRequest(page_size=2, project_id="p1", page_token=first.next_page_token)
    )
    assert [t.id for t in [*first.tokens, *rest.tokens]] == [m.id for m in made] and not rest.next_page_token
    everything = await tokens.list(tokens_pb2.ListTokensRequest())
    assert other.id in {t.id for t in everything.tokens}
    assert all(t.created_by == "root" for t in everything.tokens)

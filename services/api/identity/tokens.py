"""Issued bearer tokens (``stratus.v1.Tokens``): created with roles and an expiry, revoked at once,
checked on every call.

Each token is a record ``tokens/<id>`` in etcd holding its sha256 (never the token), so every api
replica knows it. The record is bound to a lease that ends a day after the token expires, so etcd
forgets it by itself; until then a call with it is told TOKEN_EXPIRED (or TOKEN_REVOKED), after it
BAD_TOKEN. Replicas read the records from a watch-fed cache, and etcd itself when the cache does not
know an id yet (a token made on another replica a moment ago); a revocation is seen at once on the
replica that made it and as soon as the watch brings it on the others.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from google.protobuf import timestamp_pb2

from services.api import indexes, paging
from services.api.validation import Violations, page_size
from services.core import context, keys, retry
from services.core.context import ADMIN_ROLE, MEMBER_ROLE, READER_ROLE, RequestContext
from services.core.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from services.core.etcd import KV, Store
from services.core.ids import new_id
from services.core.tokens import digest, issue, issued_id
from services.core.watchcache import Entry, PrefixCache
from stratus.state.v1 import tokens_pb2 as state_tokens_pb2
from stratus.v1 import tokens_pb2

ROLES = (READER_ROLE, MEMBER_ROLE, ADMIN_ROLE)
TTL_MIN_S = 60
TTL_MAX_S = 30 * 24 * 3600
TTL_DEFAULT_S = 24 * 3600
KEEP_AFTER_EXPIRY_S = 24 * 3600  # how long etcd keeps an expired token's record, to say so
Clock = Callable[[], float]
Record = state_tokens_pb2.TokenRecord


def ttl_of(req: tokens_pb2.CreateTokenRequest, v: Violations, ttl_min_s: int) -> int:
    """The token's lifetime in whole seconds (rounded up)."""
    seconds = req.ttl.seconds + (1 if req.ttl.nanos > 0 else 0)
    if req.ttl.seconds < 0 or req.ttl.nanos < 0:
        v.add("ttl", "must not be negative")
    elif seconds == 0:
        return TTL_DEFAULT_S
    elif not ttl_min_s <= seconds <= TTL_MAX_S:
        v.add("ttl", f"must be between {ttl_min_s}s and {TTL_MAX_S}s (30 days), got {seconds}s")
    return seconds


def validate_create(req: tokens_pb2.CreateTokenRequest, ttl_min_s: int) -> tuple[list[str], int]:
    """The roles (known, each once, in the order given) and the ttl; InvalidArgument naming the field."""
    v = Violations()
    v.required("project_id", req.project_id)
    v.identifier("project_id", req.project_id)
    v.required("user_id", req.user_id)
    v.identifier("user_id", req.user_id)
    if not req.roles:
        v.add("roles", f"at least one of {', '.join(ROLES)} is required")
    roles: list[str] = []
    for i, role in enumerate(req.roles[: len(ROLES) + 1]):
        if role not in ROLES:
            v.add(f"roles[{i}]", f"must be one of {', '.join(ROLES)}")
        elif role not in roles:
            roles.append(role)
    if len(req.roles) > len(ROLES):
        v.add("roles", f"must have at most {len(ROLES)} entries")
    ttl = ttl_of(req, v, ttl_min_s)
    v.raise_if_any()
    return roles, ttl


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


class IssuedTokens:
    def __init__(self, store: Store, ttl_min_s: int = TTL_MIN_S, clock: Clock = time.time) -> None:
        self._store = store
        self._ttl_min_s = ttl_min_s
        self._clock = clock
        self._cache: PrefixCache[Record] = PrefixCache(store, keys.TOKENS, Record.FromString)
        self._cache.subscribe(self._seen)
        self._revoked_here: set[str] = set()  # revoked by this replica, until the cache shows it

    async def start(self) -> None:
        await self._cache.start()

    async def stop(self) -> None:
        await self._cache.stop()

    def _seen(self, key: str, _old: Entry[Record] | None, new: Entry[Record] | None) -> None:
        if new is None or new.value.token.HasField("revoked_at"):
            self._revoked_here.discard(key.removeprefix(keys.TOKENS))

    # ---- the Tokens API -------------------------------------------------------------------
    async def create(self, req: tokens_pb2.CreateTokenRequest) -> tokens_pb2.CreateTokenResponse:
        roles, ttl = validate_create(req, self._ttl_min_s)
        now = self._clock()
        token_id = new_id()
        secret = issue(token_id)
        token = tokens_pb2.Token(
            id=token_id, project_id=req.project_id, user_id=req.user_id, roles=roles, created_at=timestamp(now),
            expires_at=timestamp(now + ttl), created_by=context.current().user_id,
        )  # fmt: skip
        lease = await self._store.grant(ttl + KEEP_AFTER_EXPIRY_S)
        record = Record(token=token, sha256=digest(secret))
        if not await self._store.swap(keys.token(token_id), record.SerializeToString(), 0, lease=lease):
            raise Aborted(f"token id {token_id} collided; try again")
        return tokens_pb2.CreateTokenResponse(
            token=secret, expires_at=token.expires_at, id=token_id, project_id=token.project_id,
            user_id=token.user_id, roles=roles,
        )  # fmt: skip

    async def revoke(self, req: tokens_pb2.RevokeTokenRequest) -> tokens_pb2.Token:
        token_id = self._revoke_target(req)

        async def attempt() -> tokens_pb2.Token | retry.Again:
            kv = await self._store.get(keys.token(token_id))
            if kv is None:
                raise NotFound("token", token_id, field="id" if req.id else "token")
            record = Record.FromString(kv.value)
            if req.token and not hmac.compare_digest(record.sha256, digest(req.token)):
                raise NotFound("token", token_id, field="token")
            if record.token.HasField("revoked_at"):
                return record.token
            record.token.revoked_at.CopyFrom(timestamp(self._clock()))
            if not await self._store.swap(kv.key, record.SerializeToString(), kv.mod_revision, lease=kv.lease):
                return retry.AGAIN
            self._revoked_here.add(token_id)
            return record.token

        return await retry.until_done(attempt, what=f"token {token_id}")

    @staticmethod
    def _revoke_target(req: tokens_pb2.RevokeTokenRequest) -> str:
        if bool(req.id) == bool(req.token):
            raise InvalidArgument([("id", "give the token's id or (token) the token itself, not both")])
        token_id = req.id or issued_id(req.token)
        if token_id is None:
            why = "this token was not made by CreateToken (a bootstrap token?): remove it from the tokens file"
            raise FailedPrecondition(why, reason="NOT_AN_ISSUED_TOKEN")
        return token_id

    async def list(self, req: tokens_pb2.ListTokensRequest) -> tokens_pb2.ListTokensResponse:
        """A page of the tokens (of one project when asked), in id order: at most ``page_size`` and
        about ``PAGE_BYTES``. A call reads at most ``indexes.SCAN_MOST`` records: past them the page
        may come back short, with a token."""
        limit = page_size(req.page_size)
        after = paging.decode(req.page_token, keys.TOKENS)

        def wanted(kv: KV) -> tokens_pb2.Token | None:
            token = Record.FromString(kv.value).token
            return token if not req.project_id or token.project_id == req.project_id else None

        page, last = await indexes.filtered_page(self._store, keys.TOKENS, after, limit, wanted)
        return tokens_pb2.ListTokensResponse(tokens=page, next_page_token=paging.next_token(last))

    # ---- authentication -------------------------------------------------------------------
    async def authenticate(self, token: str) -> RequestContext | None:
        """Who an issued token is; None when ``token`` is not shaped like one. Unauthenticated when
        it is unknown (BAD_TOKEN), revoked (TOKEN_REVOKED) or expired (TOKEN_EXPIRED)."""
        token_id = issued_id(token)
        if token_id is None:
            return None
        record = self._cache.get(keys.token(token_id))
        if record is None:  # made a moment ago on another replica, or not at all
            record = await self._read(token_id)
        if record is None or not hmac.compare_digest(record.sha256, digest(token)):
            raise Unauthenticated("the bearer token is not valid", reason="BAD_TOKEN")
        t = record.token
        if t.HasField("revoked_at") or token_id in self._revoked_here:
            raise Unauthenticated(f"token {token_id} was revoked", reason="TOKEN_REVOKED")
        if self._clock() >= t.expires_at.ToNanoseconds() / 1e9:
            raise Unauthenticated(f"token {token_id} expired at {t.expires_at.ToJsonString()}", reason="TOKEN_EXPIRED")
        return RequestContext(t.project_id, t.user_id, frozenset(t.roles))

    async def _read(self, token_id: str) -> Record | None:
        """An etcd outage here is answered UNAVAILABLE with a retry hint by the interceptor."""
        kv = await self._store.get(keys.token(token_id))
        return Record.FromString(kv.value) if kv is not None else None

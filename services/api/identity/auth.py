"""Who is calling and may they: a bearer token to a request context (the stack's bootstrap tokens
file, then the tokens issued through ``Tokens/CreateToken``), then the policy's rule for the method."""

from __future__ import annotations

from google.protobuf.message import Message

from services.api.identity.policy import Policy
from services.api.identity.tokens import IssuedTokens
from services.core.context import RequestContext
from services.core.errors import Unauthenticated
from services.core.tokens import TokenFile


def bearer_token(metadata: dict[str, str]) -> str:
    header = metadata.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("missing 'authorization: Bearer <token>' metadata", reason="MISSING_TOKEN")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata must be 'Bearer <token>'", reason="BAD_TOKEN")
    return token.strip()


class BearerAuthenticator:
    def __init__(self, policy: Policy, tokens_file: TokenFile, issued: IssuedTokens | None = None) -> None:
        self._policy = policy
        self._file = tokens_file
        self._issued = issued

    async def __call__(self, method: str, metadata: dict[str, str], request: Message | None) -> RequestContext:
        """The caller of ``method`` with ``request`` (None for a client stream), or Unauthenticated /
        PermissionDenied."""
        token = bearer_token(metadata)
        ctx = self._file.lookup(token)
        if ctx is None and self._issued is not None:
            ctx = await self._issued.authenticate(token)
        if ctx is None:
            raise Unauthenticated("the bearer token is not valid", reason="BAD_TOKEN")
        self._policy.authorize(method, ctx, request)
        return ctx

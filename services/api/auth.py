"""Who may call what: bearer tokens to a request context, and the admin-only methods."""

from __future__ import annotations

from services.core.context import RequestContext
from services.core.errors import PermissionDenied, Unauthenticated
from services.core.tokens import TokenFile

ADMIN_ONLY = frozenset(
    {
        "/stratus.v1.Flavors/CreateFlavor",
        "/stratus.v1.Flavors/DeleteFlavor",
        "/stratus.v1.Services/ListServices",
        "/stratus.v1.Services/UpdateService",
        "/stratus.v1.Hosts/ListHosts",
        "/stratus.v1.Hosts/GetHost",
        "/stratus.v1.Aggregates/CreateAggregate",
        "/stratus.v1.Aggregates/GetAggregate",
        "/stratus.v1.Aggregates/ListAggregates",
        "/stratus.v1.Aggregates/DeleteAggregate",
        "/stratus.v1.Aggregates/SetAggregateMetadata",
        "/stratus.v1.Aggregates/AddAggregateHost",
        "/stratus.v1.Aggregates/RemoveAggregateHost",
        "/stratus.v1.Placement/ExplainPlacement",
    }
)


class BearerAuthenticator:
    def __init__(self, tokens: TokenFile) -> None:
        self._tokens = tokens

    def __call__(self, method: str, metadata: dict[str, str]) -> RequestContext:
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata", reason="MISSING_TOKEN")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'", reason="BAD_TOKEN")
        ctx = self._tokens.authenticate(token.strip())
        if method in ADMIN_ONLY and not ctx.is_admin:
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs the admin role", reason="ADMIN_REQUIRED")
        return ctx

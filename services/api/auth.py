"""Who may call what: bearer tokens to a request context, and the methods that need a role."""

from __future__ import annotations

from services.core.context import ADMIN_ROLE, RequestContext
from services.core.errors import PermissionDenied, Unauthenticated
from services.core.tokens import TokenFile

SERVICE_ROLE = "service"  # the stack's own processes (the computes), for internal calls

# Method (or whole service) prefix -> the role a caller needs; the first match wins. Any valid
# token may call the methods no prefix matches (each then sees only its own project's things).
REQUIRED_ROLES: tuple[tuple[str, str], ...] = (
    ("/stratus.imagestore.v1.ImageStore/", SERVICE_ROLE),
    ("/stratus.v1.Flavors/CreateFlavor", ADMIN_ROLE),
    ("/stratus.v1.Flavors/DeleteFlavor", ADMIN_ROLE),
    ("/stratus.v1.Services/", ADMIN_ROLE),
    ("/stratus.v1.Hosts/", ADMIN_ROLE),
    ("/stratus.v1.Aggregates/", ADMIN_ROLE),
    ("/stratus.v1.Placement/", ADMIN_ROLE),
)


def required_role(method: str) -> str | None:
    """The role ``/package.Service/Method`` needs, if any."""
    return next((role for prefix, role in REQUIRED_ROLES if method.startswith(prefix)), None)


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
        role = required_role(method)
        if role is not None and role not in ctx.roles:
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs the {role} role",
                                   reason=f"{role.upper()}_REQUIRED")  # fmt: skip
        return ctx

"""The request context: who is calling, put on every call by the request interceptor."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


SYSTEM = RequestContext(project_id="", user_id="stratus", roles=frozenset({ADMIN_ROLE}))

_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("stratus_request", default=SYSTEM)


def current() -> RequestContext:
    return _current.get()


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def unbind(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)

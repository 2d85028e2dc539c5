"""The request context: who is calling, put on every call by the request interceptor.

Nothing is granted by default: ``current()`` with no context bound raises ``NoRequestContext``
(a bug, answered INTERNAL and logged), never an admin context. Work that runs outside a call (the
flows, recovery at start-up, seeding) binds ``system(...)`` itself, in its own task.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

READER_ROLE = "reader"
MEMBER_ROLE = "member"
ADMIN_ROLE = "admin"
SERVICE_ROLE = "service"  # the stack's own processes (the computes), for internal calls
SYSTEM_USER = "stratus"


class NoRequestContext(RuntimeError):
    """Code asked who is calling where nobody bound a context: a bug, never a grant."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def system(project_id: str = "") -> RequestContext:
    """The stack acting on its own (flows, recovery, seeding): admin, in ``project_id`` where the
    work belongs to one (a server's flow runs in the server's project)."""
    return RequestContext(project_id=project_id, user_id=SYSTEM_USER, roles=frozenset({ADMIN_ROLE}))


SYSTEM = system()

_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("stratus_request")


def current() -> RequestContext:
    try:
        return _current.get()
    except LookupError:
        raise NoRequestContext("no request context is bound (a call path that skipped authentication)") from None


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def unbind(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)


@contextmanager
def bound(ctx: RequestContext) -> Iterator[RequestContext]:
    token = bind(ctx)
    try:
        yield ctx
    finally:
        unbind(token)

"""A fence every etcd write of a context compares, as etcd's ``concurrency.Mutex.IsOwner``: the
flow owner (api/flows/owners.py) sets its ownership key and mark around a driver, and each
transaction the driver's flows make (``Store.txn``, and the plain puts and deletes, which then go
as transactions) also compares that the key still holds the mark. A write refused for that alone
raises ``FenceLost``: the writer no longer owns what it drives and must stop, not retry.

The fence is a ContextVar: set in the driver's task, it binds everything that task awaits and the
tasks it starts, and nothing else in the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WriteFence:
    """``key`` must hold exactly ``value`` for a write made under this fence to land."""

    key: str
    value: bytes


class FenceLost(RuntimeError):
    """A write was refused because its fence no longer holds: another owner has taken over."""


_current: ContextVar[WriteFence | None] = ContextVar("stratus_write_fence", default=None)


def current() -> WriteFence | None:
    return _current.get()


@contextmanager
def fenced(fence: WriteFence) -> Iterator[None]:
    """Every etcd write in this block (and in tasks it starts) compares ``fence``."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)

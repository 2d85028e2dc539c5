"""A watch over a key range that resumes from the next unseen revision after any reconnect.

Unlike ``etcd3aio``'s own watch, a compacted history is not skipped silently: the caller gets
``WatchCompacted`` and must reload, so a cache fed by the watch is never quietly wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from etcd3aio._protobuf import WatchCreateRequest, WatchRequest

from services.core.backoff import RECONNECT_S, backoff

log = logging.getLogger(__name__)

PUT = 0
DELETE = 1


class WatchCompacted(Exception):
    """The revision asked for is older than etcd's history; reload from a fresh read.

    Raised by watches and by reads at a past revision; ``compact_revision`` is 0 when etcd did not
    say (a read's error carries no number)."""

    def __init__(self, compact_revision: int) -> None:
        upto = f" up to revision {compact_revision}" if compact_revision else ""
        super().__init__(f"etcd history compacted{upto}")
        self.compact_revision = compact_revision


class FutureRevision(Exception):
    """A read asked for a revision etcd has not reached."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    key: str
    value: bytes
    mod_revision: int
    deleted: bool
    lease: int = 0
    prev_value: bytes | None = None


@dataclass(frozen=True, slots=True)
class WatchBatch:
    events: list[WatchEvent]
    revision: int


async def _requests(create: WatchCreateRequest) -> AsyncIterator[WatchRequest]:
    yield WatchRequest(create_request=create)
    await asyncio.Event().wait()  # keep the request side open for the life of the stream


async def watch_range(
    stub: Any,
    key: bytes,
    range_end: bytes,
    start_revision: int,
    to_rel: Callable[[bytes], str],
    prev: bool = False,
) -> AsyncIterator[WatchBatch]:
    next_revision = start_revision
    delays = backoff(*RECONNECT_S)
    while True:
        create = WatchCreateRequest(key=key, range_end=range_end, start_revision=next_revision, prev_kv=prev)
        stream = stub.Watch(_requests(create))
        try:
            async for resp in stream:
                delays = backoff(*RECONNECT_S)
                if resp.compact_revision > 0:
                    raise WatchCompacted(resp.compact_revision)
                if resp.canceled:
                    raise ConnectionError(f"etcd cancelled the watch: {resp.cancel_reason}")
                if resp.created and not resp.events:
                    continue
                if resp.events:
                    events = [
                        WatchEvent(
                            key=to_rel(ev.kv.key),
                            value=ev.kv.value,
                            mod_revision=ev.kv.mod_revision,
                            deleted=ev.type == DELETE,
                            lease=ev.kv.lease,
                            prev_value=ev.prev_kv.value if ev.HasField("prev_kv") else None,
                        )
                        for ev in resp.events
                    ]
                    next_revision = events[-1].mod_revision + 1
                    yield WatchBatch(events, events[-1].mod_revision)
                elif resp.header.revision >= next_revision:
                    next_revision = resp.header.revision + 1  # progress notification
            log.warning("etcd watch stream ended; resuming from revision %d", next_revision)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNKNOWN,
            ):
                raise
            log.warning("etcd watch lost (%s); resuming from revision %d", exc.code().name, next_revision)
        finally:
            stream.cancel()
        await asyncio.sleep(next(delays))

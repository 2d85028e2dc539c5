"""Paged listings, reading through an index, and writing an index once for the records from before it.

A listing reads page by page at one revision and only as far as its page needs: ``records`` (every
record under a prefix, from a key on; ``decoded``: each as (key, message)), ``indexed`` (the
records an index names, a bounded batch at a time), ``filtered_page`` (the records a filter keeps,
reading at most ``SCAN_MOST`` keys a call: a page may come back short, with a token to go on,
rather than one call reading without bound). The page itself is filled by
``services.core.message_limits`` (at most its count, about ``PAGE_BYTES``).

An index here is a prefix of empty keys that each name a record (``project_images/<owner>/<id>``,
``host_aggregates/<host>/<aggregate>``), written in the transaction that writes the record, so it
holds exactly the records that are there. Reading one is a paged keys-only range (``ids``) and then
the records named, a bounded batch at a time (``get_many``). ``merged`` walks several such sorted
streams together.

``backfill`` indexes the records written before an index existed: once per deployment (a
``schema/<name>`` marker says it is done), page by page at api start, each record's index entries
only while the record is unchanged (a record that changes meanwhile was indexed by its writer).
It is idempotent, so api replicas starting together may both run it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import grpc
from etcd3aio._protobuf import RequestOp
from google.protobuf.message import Message

from services.core.etcd import KV, Store, is_lease_gone
from services.core.message_limits import PageFill

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
SCAN_MOST = 5000  # keys one call of a filtered listing reads at most
GET_BATCH = 64  # records read at once (concurrent gets)
TXN_OPS = 100  # etcd refuses a transaction of more than --max-txn-ops (default 128) operations


async def ids(store: Store, prefix: str, after: str = "") -> AsyncIterator[str]:
    """The names under ``prefix`` (the key past it) in key order, after ``after`` if given, paged."""
    start = prefix + after if after else ""
    async for page in store.scan(prefix, start_after=start, keys_only=True):
        for kv in page.kvs:
            yield kv.key[len(prefix) :]


async def first_ids(store: Store, prefix: str, most: int) -> list[str]:
    """At most ``most`` names under ``prefix``: one page."""
    page = await store.page(prefix, limit=most, keys_only=True)
    return [kv.key[len(prefix) :] for kv in page.kvs]


async def records(store: Store, prefix: str, after_key: str = "") -> AsyncIterator[KV]:
    """The records under ``prefix`` in key order, after the key ``after_key`` if given, read page by
    page as they are consumed."""
    async for page in store.scan(prefix, start_after=after_key):
        for kv in page.kvs:
            yield kv


async def decoded(
    store: Store, prefix: str, after_key: str, decode: Callable[[bytes], M]
) -> AsyncIterator[tuple[str, M]]:
    """``records`` as (key, ``decode(value)``): what a page of them is filled from."""
    async for kv in records(store, prefix, after_key):
        yield kv.key, decode(kv.value)


async def indexed(
    store: Store, index: str, after: str, record_key: Callable[[str], str], batch: int = GET_BATCH
) -> AsyncIterator[KV]:
    """The records the index ``index`` names after the name ``after``, in its order (a name whose
    record is gone is skipped), read ``batch`` at a time as they are consumed."""
    names: list[str] = []
    async for name in ids(store, index, after):
        names.append(name)
        if len(names) >= batch:
            for kv in await get_many(store, [record_key(n) for n in names]):
                yield kv
            names = []
    for kv in await get_many(store, [record_key(n) for n in names]):
        yield kv


async def merged(streams: list[AsyncIterator[str]]) -> AsyncIterator[tuple[str, int]]:
    """The names of sorted streams in order, each once, with the set of streams that had it (bits)."""
    heads: dict[int, str] = {}
    for n, stream in enumerate(streams):
        first = await anext(stream, None)
        if first is not None:
            heads[n] = first
    while heads:
        low = min(heads.values())
        had = 0
        for n in [n for n, head in heads.items() if head == low]:
            had |= 1 << n
            following = await anext(streams[n], None)
            if following is None:
                del heads[n]
            else:
                heads[n] = following
        yield low, had


async def filtered_page(
    store: Store, prefix: str, after_key: str, limit: int, keep: Callable[[KV], M | None], most: int = SCAN_MOST
) -> tuple[list[M], str]:
    """What ``keep`` makes of the records under ``prefix`` after ``after_key`` (None: left out), one
    page of them (at most ``limit``, about ``PAGE_BYTES``), and the key to go on after ("" at the
    end). Reads at most ``most`` keys: past them the page comes back as it is, with the last key
    read to go on from."""
    page: PageFill[M] = PageFill(limit)
    read = 0
    async for kv in records(store, prefix, after_key):
        item = keep(kv)
        if item is None:
            page.skip(kv.key)
        elif not page.take(kv.key, item):
            return page.items, page.cursor
        read += 1
        if read >= most:
            return page.items, kv.key
    return page.items, ""


async def get_many(store: Store, keys: Sequence[str]) -> list[KV]:
    """The records at ``keys`` that exist, in that order (``Store.get_many``, without the absent)."""
    return [kv for kv in await store.get_many(keys) if kv is not None]


def done_key(name: str) -> str:
    return f"schema/{name}"


async def backfill(store: Store, name: str, prefix: str, ops_of: Callable[[KV], list[RequestOp]]) -> int:
    """Writes ``ops_of(record)`` for every record under ``prefix``, each while the record is unchanged
    (in transactions of at most ``TXN_OPS``), unless ``schema/<name>`` says it was done; how many
    records it indexed."""
    if await store.get(done_key(name)) is not None:
        return 0
    indexed = 0
    async for page in store.scan(prefix):
        for kv in page.kvs:
            indexed += int(await _index_one(store, kv, ops_of(kv)))
    await store.put(done_key(name), b"1")
    if indexed:
        log.info("indexed %d record(s) under %s (%s)", indexed, prefix, name)
    return indexed


async def _index_one(store: Store, kv: KV, ops: list[RequestOp]) -> bool:
    """False when the record changed or went (its writer keeps its index) or its lease ended."""
    for start in range(0, len(ops), TXN_OPS):
        try:
            ok, _ = await store.txn([store.cmp_mod(kv.key, kv.mod_revision)], ops[start : start + TXN_OPS])
        except grpc.aio.AioRpcError as exc:  # a lease that ended meanwhile: its record went with it
            if not is_lease_gone(exc):
                raise
            return False
        if not ok:
            return False
    return bool(ops)

"""The one adapter between Stratus and etcd (over ``etcd3aio``, pinned).

Keys passed in and returned are relative to the store's prefix (see ``keys.py``). Writes that
must not race are compare-and-swap transactions on a key's mod revision. ``etcd3aio`` retries
unary calls on DEADLINE_EXCEEDED, which could make a swap that landed look failed, so swaps run
with one attempt and an ambiguous outcome is settled by reading the key back.

Every call has a deadline (``CALL_TIMEOUT_S``), so a frozen etcd (SIGSTOP, a hung disk) fails a
call within seconds instead of hanging it; ``is_store_outage`` says which errors mean "etcd cannot
be reached now" (the api answers those UNAVAILABLE with a retry hint, flows wait and try again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from etcd3aio import Etcd3Client, EtcdConnectionError, EtcdTransientError, prefix_range_end
from etcd3aio._protobuf import Compare, RequestOp

from services.core import write_fence
from services.core.backoff import SETTLE_S, backoff
from services.core.etcd_maint import ALARM_CODES, Alarm, Member, MemberStatus, alarm_kind
from services.core.watch import FutureRevision, WatchBatch, WatchCompacted, watch_range

log = logging.getLogger(__name__)

AMBIGUOUS = (EtcdConnectionError, EtcdTransientError, TimeoutError)
CALL_TIMEOUT_S = 5.0
SETTLE_ATTEMPTS = 3  # tries of a swap whose answer is lost and whose outcome a read back cannot tell
# What etcd says when it refuses a write for lack of space ("etcdserver: mvcc: database space exceeded").
NOSPACE_DETAIL = "database space exceeded"
# An outage of the state store: AMBIGUOUS, and the ConnectionError of a swap that never settled.
OUTAGE: tuple[type[BaseException], ...] = (*AMBIGUOUS, ConnectionError)
# After an outage the channel reconnects within this (gRPC's default backoff grows to 120 s).
RECONNECT_BACKOFF_MAX_MS = 2000
# Range reads page: at most PAGE_KEYS keys a page to start with, then as many as fit in about
# PAGE_BYTES (never more than PAGE_KEYS_MAX: etcd 3.4 walks the rest of the range on every limited
# read to count it, so small records read in small pages would cost the square of their number).
# The channel takes answers up to MAX_RECEIVE_BYTES (above etcd's own request limit of 1.5 MiB, so
# one record always fits); a page that does not fit is read again in halves. Requests are bounded
# by MAX_SEND_BYTES (etcd refuses more than 1.5 MiB).
PAGE_KEYS = 256
GET_MANY_PARALLEL = 32
PAGE_KEYS_MAX = 10_000
PAGE_BYTES = 1 << 20
MAX_RECEIVE_BYTES = 8 << 20
MAX_SEND_BYTES = 2 << 20


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a range read: its keys, the revision it was read at, whether more keys follow,
    and the size of etcd's answer in bytes."""

    kvs: list[KV]
    revision: int
    more: bool
    size: int


class TooMany(Exception):
    """A prefix read with ``read_all`` held more keys than its bound."""


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """Client TLS towards etcd: the CA its certificate is signed by; a client certificate and key when
    the cluster wants one (``--client-cert-auth``); a name to check instead of the address when its
    certificate names no IP (needed for several endpoints)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def client_args(self) -> dict[str, Any]:
        return {
            "ca_cert": self.ca.read_bytes(),
            "cert_chain": self.cert.read_bytes() if self.cert else None,
            "cert_key": self.key.read_bytes() if self.key else None,
            "tls_server_name": self.server_name,
        }


def endpoints_from_urls(urls: Sequence[str]) -> list[str]:
    """``http://127.0.0.1:2379`` -> ``127.0.0.1:2379``; bare ``host:port`` passes through."""
    out = []
    for url in urls:
        for part in (p.strip() for p in url.split(",")):
            if part:
                out.append(part.split("://", 1)[-1].rstrip("/"))
    if not out:
        raise ValueError("no etcd endpoint given")
    return out


class Store:
    """Typed access to Stratus's keys in etcd."""

    def __init__(self, endpoints: Sequence[str], prefix: str = "/stratus/", tls: EtcdTls | None = None) -> None:
        if tls is None and any(url.strip().startswith("https://") for url in endpoints):
            raise ValueError("an https:// etcd URL needs the CA that signed its certificate (etcd_ca)")
        self.endpoints = endpoints_from_urls(endpoints)
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._client = Etcd3Client(self.endpoints, **(tls.client_args() if tls else {}))
        self._client._manager.grpc_options += [  # the client takes no channel options of its own
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ]
        self._connected = False

    async def connect(self, wait_s: float = 30.0) -> None:
        """Connects and waits until etcd answers (it may still be starting)."""
        await self._client.connect()
        self._connected = True
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            try:
                await self._client.ping(write_check=False, timeout=2.0)
                return
            except AMBIGUOUS as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise ConnectionError(f"etcd at {','.join(self.endpoints)} is unreachable: {exc}") from exc
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self._connected:
            await self._client.close()
            self._connected = False

    # ---- keys -------------------------------------------------------------------------------
    def _abs(self, key: str) -> bytes:
        return (self.prefix + key).encode()

    def _rel(self, key: bytes) -> str:
        return key.decode()[len(self.prefix) :]

    def _kv(self, kv: Any) -> KV:
        return KV(self._rel(kv.key), kv.value, kv.mod_revision, kv.create_revision, kv.lease)

    @property
    def _raw(self) -> Any:
        return self._client

    # ---- reads ------------------------------------------------------------------------------
    async def get(self, key: str, *, revision: int = 0) -> KV | None:
        """The key as it is (or as it was at ``revision``; see ``_range``)."""
        resp = await self._range(self._abs(key), revision=revision)
        return self._kv(resp.kvs[0]) if resp.kvs else None

    async def _range(self, key: bytes, *, revision: int = 0, **kwargs: Any) -> Any:
        """One Range call; at a past ``revision`` it raises ``WatchCompacted`` when etcd has compacted
        that history and ``FutureRevision`` when etcd has not reached it."""
        try:
            return await self._raw.kv.get(key, revision=revision, timeout=CALL_TIMEOUT_S, **kwargs)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.OUT_OF_RANGE:
                raise
            if "future" in (exc.details() or ""):
                raise FutureRevision(f"etcd has not reached revision {revision}") from exc
            raise WatchCompacted(0) from exc

    async def get_many(self, keys: Sequence[str], *, revision: int = 0) -> list[KV | None]:
        """Each key as it is (or was at ``revision``), read ``GET_MANY_PARALLEL`` at a time."""
        gate = asyncio.Semaphore(GET_MANY_PARALLEL)

        async def one(key: str) -> KV | None:
            async with gate:
                return await self.get(key, revision=revision)

        return list(await asyncio.gather(*(one(k) for k in keys)))

    async def get_with_revision(self, key: str) -> tuple[KV | None, int]:
        """The key (or None) and the store revision it was read at, to watch from without a gap."""
        resp = await self._raw.kv.get(self._abs(key), timeout=CALL_TIMEOUT_S)
        return (self._kv(resp.kvs[0]) if resp.kvs else None), int(resp.header.revision)

    async def page(
        self, prefix: str, *, start_after: str = "", limit: int = PAGE_KEYS, revision: int = 0, keys_only: bool = False
    ) -> Page:
        """At most ``limit`` keys under ``prefix`` in key order, after ``start_after`` if given, read
        at ``revision`` (0: now; the page says which, for the next pages of one listing). A page
        larger than the channel's receive limit is read again in halves, so no record size can make
        a read fail."""
        if not 0 < limit <= PAGE_KEYS_MAX:
            raise ValueError(f"a page holds 1 to {PAGE_KEYS_MAX} keys, not {limit}")
        end = prefix_range_end(self._abs(prefix))
        start = self._abs(start_after) + b"\x00" if start_after else self._abs(prefix)
        while True:
            try:
                resp = await self._range(start, range_end=end, limit=limit, revision=revision, keys_only=keys_only)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or limit == 1:
                    raise
                limit = max(1, limit // 2)
                continue
            kvs = [self._kv(kv) for kv in resp.kvs]
            return Page(kvs, revision or int(resp.header.revision), bool(resp.more), resp.ByteSize())

    async def scan(
        self, prefix: str, *, start_after: str = "", revision: int = 0, keys_only: bool = False
    ) -> AsyncIterator[Page]:
        """Every key under ``prefix``, page by page, all pages at the first page's revision. A page
        aims at ``PAGE_BYTES``: its key count shrinks after a heavy page and grows after a light one."""
        limit = PAGE_KEYS
        while True:
            page = await self.page(prefix, start_after=start_after, limit=limit, revision=revision, keys_only=keys_only)
            revision = page.revision
            yield page
            if not page.more or not page.kvs:
                return
            start_after = page.kvs[-1].key
            per_key = max(1, page.size // len(page.kvs))
            limit = max(1, min(PAGE_KEYS_MAX, PAGE_BYTES // per_key))

    async def read_all(self, prefix: str, *, most: int, revision: int = 0) -> tuple[list[KV], int]:
        """Every key under a prefix that holds a bounded number of keys by design (one server's
        actions, one image's members): paged, at one revision. Raises ``TooMany`` past ``most``,
        so a bound that a bug let slip fails loudly instead of filling memory."""
        out: list[KV] = []
        async for page in self.scan(prefix, revision=revision):
            out.extend(page.kvs)
            revision = page.revision
            if len(out) > most:
                raise TooMany(f"{prefix} holds more than {most} keys")
        return out, revision

    async def count(self, prefix: str) -> int:
        """How many keys are under ``prefix`` (etcd counts; no key is sent)."""
        resp = await self._range(self._abs(prefix), range_end=prefix_range_end(self._abs(prefix)), count_only=True)
        return int(resp.count)

    # ---- writes -----------------------------------------------------------------------------
    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        if write_fence.current() is not None:  # a fenced put is a transaction comparing the fence
            _, resp = await self.txn([], [self.op_put(key, value, lease)])
            return int(resp.header.revision)
        resp = await self._raw.kv.put(self._abs(key), value, lease=lease, timeout=CALL_TIMEOUT_S)
        return int(resp.header.revision)

    async def delete(self, key: str) -> bool:
        if write_fence.current() is not None:
            _, resp = await self.txn([], [self.op_delete(key)])
            return bool(resp.responses[0].response_delete_range.deleted)
        resp = await self._raw.kv.delete(self._abs(key), timeout=CALL_TIMEOUT_S)
        return bool(resp.deleted)

    async def delete_prefix(self, prefix: str) -> int:
        if write_fence.current() is not None:
            _, resp = await self.txn([], [self.op_delete_prefix(prefix)])
            return int(resp.responses[0].response_delete_range.deleted)
        resp = await self._raw.kv.delete(
            self._abs(prefix), range_end=prefix_range_end(self._abs(prefix)), timeout=CALL_TIMEOUT_S
        )
        return int(resp.deleted)

    # ---- transactions -----------------------------------------------------------------------
    def op_put(self, key: str, value: bytes, lease: int = 0) -> RequestOp:
        return self._raw.kv.txn_op_put(self._abs(key), value, lease=lease)

    def op_delete(self, key: str) -> RequestOp:
        return self._raw.kv.txn_op_delete(self._abs(key))

    def op_delete_prefix(self, prefix: str) -> RequestOp:
        return self._raw.kv.txn_op_delete(self._abs(prefix), range_end=prefix_range_end(self._abs(prefix)))

    def op_get(self, key: str) -> RequestOp:
        return self._raw.kv.txn_op_get(self._abs(key))

    def cmp_mod(self, key: str, mod_revision: int) -> Compare:
        """True while ``key`` is unchanged since ``mod_revision`` (0: while it does not exist)."""
        return Compare(result=Compare.EQUAL, target=Compare.MOD, key=self._abs(key), mod_revision=mod_revision)

    def cmp_value(self, key: str, value: bytes) -> Compare:
        """True while ``key`` holds exactly ``value``."""
        return Compare(result=Compare.EQUAL, target=Compare.VALUE, key=self._abs(key), value=value)

    def cmp_absent(self, key: str) -> Compare:
        return Compare(result=Compare.EQUAL, target=Compare.CREATE, key=self._abs(key), create_revision=0)

    async def txn(
        self, compare: Sequence[Compare], success: Sequence[RequestOp], failure: Sequence[RequestOp] = ()
    ) -> tuple[bool, Any]:
        """One attempt; raises on an ambiguous outcome (the caller knows how to check). Under a
        write fence (write_fence.py) it also compares the fence, and raises FenceLost when the fence
        alone refused it."""
        fence = write_fence.current()
        if fence is not None:
            compare = [*compare, self.cmp_value(fence.key, fence.value)]
        resp = await self._raw.kv.txn(compare, success, failure, timeout=CALL_TIMEOUT_S, max_attempts=1)
        if fence is not None and not resp.succeeded:
            held = await self.get(fence.key)
            if held is None or held.value != fence.value:
                raise write_fence.FenceLost(f"{fence.key} no longer holds this writer's mark: it lost ownership")
        return bool(resp.succeeded), resp

    async def swap(self, key: str, value: bytes, mod_revision: int, lease: int = 0) -> bool:
        """Writes ``value`` if ``key`` is still at ``mod_revision`` (0: absent). False on a lost race."""
        return await self.swap_many([(key, value, mod_revision)], lease=lease)

    async def swap_many(
        self,
        writes: Sequence[tuple[str, bytes | None, int]],
        lease: int = 0,
    ) -> bool:
        """Atomically applies writes (key, value or None to delete, expected mod revision)."""
        compares = [self.cmp_mod(k, rev) for k, _, rev in writes]
        ops = [self.op_put(k, v, lease) if v is not None else self.op_delete(k) for k, v, _ in writes]
        delays = backoff(*SETTLE_S)
        for _ in range(SETTLE_ATTEMPTS):
            try:
                ok, _ = await self.txn(compares, ops)
                return ok
            except AMBIGUOUS as exc:
                log.warning("etcd swap outcome unknown (%s), reading back", exc)
                landed = await self._landed(writes)
                if landed is not None:
                    return landed
                await asyncio.sleep(next(delays))
        raise ConnectionError(f"etcd did not settle a compare-and-swap after {SETTLE_ATTEMPTS} attempts")

    async def _landed(self, writes: Sequence[tuple[str, bytes | None, int]]) -> bool | None:
        """After an ambiguous swap: True if it landed, False if someone else won, None to retry."""
        first_key, first_value, first_rev = writes[0]
        current = await self.get(first_key)
        if current is None:
            if first_value is None and first_rev != 0:
                return True
            return None if first_rev == 0 else False
        if current.mod_revision == first_rev:
            return None
        return first_value is not None and current.value == first_value

    # ---- leases -----------------------------------------------------------------------------
    async def grant(self, ttl_s: int) -> int:
        resp = await self._raw.lease.grant(ttl_s, timeout=CALL_TIMEOUT_S)
        return int(resp.ID)

    async def revoke(self, lease_id: int) -> None:
        await self._raw.lease.revoke(lease_id, timeout=CALL_TIMEOUT_S)

    def keepalive_stream(self, requests: AsyncIterator[Any]) -> Any:
        """The raw bidirectional LeaseKeepAlive stream; ``LeaseSession`` owns it."""
        return self._raw.lease._stub.LeaseKeepAlive(requests)

    # ---- history ----------------------------------------------------------------------------
    async def compact(self, revision: int) -> None:
        """Drops the history before ``revision`` (etcd keeps it until compacted): reads and watches
        from an older revision then raise ``WatchCompacted``."""
        await self._raw.kv.compact(revision, physical=True, timeout=CALL_TIMEOUT_S)

    # ---- maintenance (see etcd_maint.py) ------------------------------------------------------
    async def alarms(self) -> list[Alarm]:
        """The cluster's active alarms (any member answers for all of them)."""
        resp = await self._raw.maintenance.alarms(timeout=CALL_TIMEOUT_S)
        return [Alarm(int(a.memberID), alarm_kind(int(a.alarm))) for a in resp.alarms]

    async def disarm(self, alarm: Alarm) -> None:
        """Clears ``alarm``; a NOSPACE comes back at the next write that still finds no room."""
        code = ALARM_CODES[alarm.kind]
        await self._raw.maintenance.alarm_deactivate(code, member_id=alarm.member_id, timeout=CALL_TIMEOUT_S)

    async def members(self) -> list[Member]:
        resp = await self._raw.cluster.member_list(timeout=CALL_TIMEOUT_S)
        return [Member(int(m.ID), str(m.name), tuple(m.clientURLs)) for m in resp.members]

    async def member_status(self) -> MemberStatus:
        """The member this store's channel reaches (give the store that member's URL only)."""
        resp = await self._raw.maintenance.status(timeout=CALL_TIMEOUT_S)
        return MemberStatus(int(resp.header.member_id), int(resp.leader), int(resp.dbSize), int(resp.dbSizeInUse))

    async def defragment(self, timeout_s: float) -> None:
        """Defragments the member this store's channel reaches (one attempt: it answers nothing
        else meanwhile, so it is not to be repeated blindly)."""
        await self._raw.maintenance.defragment(timeout=timeout_s, max_attempts=1)

    # ---- watches ----------------------------------------------------------------------------
    def watch_prefix(self, prefix: str, start_revision: int, *, prev: bool = False) -> AsyncIterator[WatchBatch]:
        """Every change under ``prefix`` from ``start_revision`` on, across reconnects; with each
        event the value before it when ``prev`` (etcd then reads and sends it: ask only if needed).

        Raises ``WatchCompacted`` when history from that revision is gone: reload and re-watch.
        """
        return watch_range(
            self._raw.watch._stub,
            self._abs(prefix),
            prefix_range_end(self._abs(prefix)),
            start_revision,
            self._rel,
            prev,
        )


def is_unavailable(exc: BaseException) -> bool:
    """etcd cannot take the call now: unreachable, too slow, or out of space (``is_store_full``)."""
    return (
        isinstance(exc, AMBIGUOUS)
        or (isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE)
        or is_store_full(exc)
    )


def is_store_full(exc: BaseException) -> bool:
    """True when etcd refused a write because its database reached its quota (the NOSPACE alarm
    is raised; every write but a delete is refused until it is disarmed): a reason to wait."""
    return (
        isinstance(exc, grpc.aio.AioRpcError)
        and exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        and NOSPACE_DETAIL in (exc.details() or "")
    )


def is_lease_gone(exc: BaseException) -> bool:
    """True when etcd refused a write because its lease expired first (e.g. etcd was frozen for
    longer than the lease's TTL between the grant and the write): grant a new one and try again."""
    return (
        isinstance(exc, grpc.aio.AioRpcError)
        and exc.code() == grpc.StatusCode.NOT_FOUND
        and "lease not found" in (exc.details() or "")
    )


def is_store_outage(exc: BaseException) -> bool:
    """True when ``exc`` says etcd could not be reached or did not answer in time (stopped, frozen,
    partitioned): a reason to wait and try again, not a bug."""
    return isinstance(exc, OUTAGE) or is_unavailable(exc)

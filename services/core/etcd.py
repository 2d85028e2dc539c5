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

from services.core.watch import FutureRevision, WatchBatch, WatchCompacted, watch_range

log = logging.getLogger(__name__)

AMBIGUOUS = (EtcdConnectionError, EtcdTransientError, TimeoutError)
CALL_TIMEOUT_S = 5.0
# An outage of the state store: AMBIGUOUS, and the ConnectionError of a swap that never settled.
OUTAGE: tuple[type[BaseException], ...] = (*AMBIGUOUS, ConnectionError)
# After an outage the channel reconnects within this (gRPC's default backoff grows to 120 s).
RECONNECT_BACKOFF_MAX_MS = 2000


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


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

    async def get_with_revision(self, key: str) -> tuple[KV | None, int]:
        """The key (or None) and the store revision it was read at, to watch from without a gap."""
        resp = await self._raw.kv.get(self._abs(key), timeout=CALL_TIMEOUT_S)
        return (self._kv(resp.kvs[0]) if resp.kvs else None), int(resp.header.revision)

    async def get_prefix(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> tuple[list[KV], int]:
        """Keys under ``prefix`` in key order, after ``start_after`` if given; and the revision read
        (``revision`` itself when given: the keys as they were then, for pages of one listing)."""
        end = prefix_range_end(self._abs(prefix))
        start = self._abs(start_after) + b"\x00" if start_after else self._abs(prefix)
        resp = await self._range(start, range_end=end, limit=limit, revision=revision)
        return [self._kv(kv) for kv in resp.kvs], revision or int(resp.header.revision)

    # ---- writes -----------------------------------------------------------------------------
    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        resp = await self._raw.kv.put(self._abs(key), value, lease=lease, timeout=CALL_TIMEOUT_S)
        return int(resp.header.revision)

    async def delete(self, key: str) -> bool:
        resp = await self._raw.kv.delete(self._abs(key), timeout=CALL_TIMEOUT_S)
        return bool(resp.deleted)

    async def delete_prefix(self, prefix: str) -> int:
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
        """One attempt; raises on an ambiguous outcome (the caller knows how to check)."""
        resp = await self._raw.kv.txn(compare, success, failure, timeout=CALL_TIMEOUT_S, max_attempts=1)
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
        for attempt in range(3):
            try:
                ok, _ = await self.txn(compares, ops)
                return ok
            except AMBIGUOUS as exc:
                log.warning("etcd swap outcome unknown (%s), reading back", exc)
                landed = await self._landed(writes)
                if landed is not None:
                    return landed
                await asyncio.sleep(0.05 * (attempt + 1))
        raise ConnectionError("etcd did not settle a compare-and-swap after 3 attempts")

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

    # ---- watches ----------------------------------------------------------------------------
    def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Every change under ``prefix`` from ``start_revision`` on, across reconnects.

        Raises ``WatchCompacted`` when history from that revision is gone: reload and re-watch.
        """
        return watch_range(
            self._raw.watch._stub,
            self._abs(prefix),
            prefix_range_end(self._abs(prefix)),
            start_revision,
            self._rel,
        )


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, AMBIGUOUS) or (
        isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE
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

"""Fills an etcd until it raises NOSPACE (for tests of its quota): distinct keys of ~1 MiB each."""

from __future__ import annotations

import grpc

from services.core.etcd import Store, is_store_full

CHUNK_BYTES = 1 << 20  # under etcd's request limit (1.5 MiB)
FILLER = "filler/"


async def fill_until_full(store: Store, most: int = 512) -> int:
    """Puts ``FILLER<n>`` keys until etcd refuses one for lack of space; how many it took."""
    for n in range(most):
        try:
            await store.put(f"{FILLER}{n:05d}", bytes([n % 251]) * CHUNK_BYTES)
        except grpc.aio.AioRpcError as exc:
            if not is_store_full(exc):
                raise
            return n
    raise AssertionError(f"etcd took {most} MiB without raising NOSPACE: is its quota set?")


async def refused_put(store: Store) -> grpc.aio.AioRpcError:
    """The error etcd answers a small write with (it must refuse it)."""
    try:
        await store.put("probe", b"x")
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("etcd took a write while it should be out of space")

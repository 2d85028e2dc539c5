"""gRPC channels to peer services, one per endpoint, and where the peers are."""

from __future__ import annotations

import grpc

from services.core import keys
from services.core.etcd import Store
from services.core.tls import TlsFiles, aio_channel
from services.core.watchcache import PrefixCache
from stratus.state.v1 import state_pb2

CHANNEL_OPTIONS = [("grpc.keepalive_time_ms", 20_000), ("grpc.enable_retries", 1)]


class ChannelPool:
    """Channels to peers: mutual TLS with this process's identity ``tls``, plaintext with None."""

    def __init__(self, tls: TlsFiles | None) -> None:
        self._tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = aio_channel(endpoint, self._tls, CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()


def _decode_service(raw: bytes) -> state_pb2.ServiceRecord:
    return state_pb2.ServiceRecord.FromString(raw)


class ServiceDirectory:
    """Live services from their lease-bound ``services/<binary>/<host>`` keys: of every binary, or
    of ``binary`` only (a compute follows the apis, not every other compute)."""

    def __init__(self, store: Store, binary: str = "") -> None:
        prefix = f"{keys.SERVICES}{binary}/" if binary else keys.SERVICES
        self.cache: PrefixCache[state_pb2.ServiceRecord] = PrefixCache(store, prefix, _decode_service)
        self._next: dict[str, int] = {}

    async def start(self) -> None:
        await self.cache.start()

    async def stop(self) -> None:
        await self.cache.stop()

    def live(self, binary: str) -> list[state_pb2.ServiceRecord]:
        prefix = f"{keys.SERVICES}{binary}/"
        return [e.value for k, e in sorted(self.cache.entries.items()) if k.startswith(prefix)]

    def endpoint(self, binary: str, host: str) -> str | None:
        record = self.cache.get(keys.service(binary, host))
        return record.endpoint if record else None

    def pick(self, binary: str) -> str | None:
        """Round-robin over the live services of a binary."""
        live = self.live(binary)
        if not live:
            return None
        i = self._next.get(binary, 0) % len(live)
        self._next[binary] = i + 1
        return live[i].endpoint

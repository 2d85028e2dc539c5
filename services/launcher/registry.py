"""Who is serving: the lease-bound ``services/<binary>/<host>`` records in etcd."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from services.core import keys
from services.core.etcd import AMBIGUOUS, Store
from services.launcher.supervised import Supervised
from stratus.state.v1 import state_pb2

log = logging.getLogger("stratus.up")
# What reading etcd may raise while it is down or restarting: wait and read again.
ETCD_DOWN: tuple[type[BaseException], ...] = (*AMBIGUOUS, ConnectionError, OSError, grpc.RpcError)


async def read_services(store: Store, services: Sequence[Supervised]) -> dict[tuple[str, str], state_pb2.ServiceRecord]:
    """The registrations of ``services`` (their own keys only, not every process of the deployment)."""
    wanted = [keys.service(s.binary, s.host) for s in services]
    return {keys.split_service(kv.key): state_pb2.ServiceRecord.FromString(kv.value)
            for kv in await asyncio.gather(*(store.get(key) for key in wanted)) if kv is not None}  # fmt: skip


def take_registrations(
    records: dict[tuple[str, str], state_pb2.ServiceRecord], services: Sequence[Supervised]
) -> bool:
    """Updates each service from its record (of its current pid only); True if anything changed."""
    changed = False
    for service in services:
        record = records.get((service.binary, service.host))
        if record is not None:
            changed = service.registered(record.endpoint, record.pid) or changed
    return changed


def not_serving(services: Sequence[Supervised]) -> list[Supervised]:
    """Services whose current process has not registered yet."""
    return [s for s in services if s.registered_pid != s.pid or not s.endpoint]


async def release_dead(store: Store, service: Supervised, pid: int) -> bool:
    """Revokes the lease of a child that died (SIGKILL, a crash) while its registration still names
    it, so that its restart need not wait out the TTL before it may register and serve again (the
    keys on that lease, its registration and e.g. a compute's capabilities, go with it). True if
    it revoked one; etcd unreachable or another pid registered: nothing to do."""
    if service.binary == "etcd":
        return False
    try:
        kv = await store.get(keys.service(service.binary, service.host))
        if kv is None or not kv.lease or state_pb2.ServiceRecord.FromString(kv.value).pid != pid:
            return False
        await store.revoke(kv.lease)
    except ETCD_DOWN as exc:
        log.warning("could not release the lease of %s (pid %d): %s; it lapses by itself", service.name, pid, exc)
        return False
    log.info("released the lease of %s (pid %d)", service.name, pid)
    return True

"""Who is serving: the lease-bound ``services/<binary>/<host>`` records in etcd."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.core import keys
from services.core.etcd import AMBIGUOUS, Store
from services.launcher.supervised import Supervised
from stratus.state.v1 import state_pb2

# What reading etcd may raise while it is down or restarting: wait and read again.
ETCD_DOWN: tuple[type[BaseException], ...] = (*AMBIGUOUS, ConnectionError, OSError, grpc.RpcError)


async def read_services(store: Store) -> dict[tuple[str, str], state_pb2.ServiceRecord]:
    kvs, _ = await store.get_prefix(keys.SERVICES)
    records = {}
    for kv in kvs:
        record = state_pb2.ServiceRecord.FromString(kv.value)
        records[keys.split_service(kv.key)] = record
    return records


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

"""A child that died is let go of at once: the launcher revokes the lease its registration is on
(only while the registration still names that child), so its restart registers without waiting
out the TTL. Against a real etcd."""

from __future__ import annotations

from pathlib import Path

from services.core import keys
from services.core.etcd import Store
from services.launcher.registry import release_dead
from services.launcher.supervised import Supervised
from stratus.state.v1 import state_pb2


async def register(store: Store, pid: int) -> int:
    lease = await store.grant(60)
    record = state_pb2.ServiceRecord(binary="api", host="api-1", pid=pid)
    await store.put(keys.service("api", "api-1"), record.SerializeToString(), lease=lease)
    await store.put(keys.host_stats("api-1"), b"on the same lease", lease=lease)
    return lease


async def test_the_dead_childs_lease_goes_and_a_living_ones_stays(store: Store) -> None:
    api = Supervised("api", "api-1", lambda port: [], Path("/dev/null"))
    await register(store, pid=4242)
    assert await release_dead(store, api, 1111) is False  # another pid registered since: not ours to drop
    assert await store.get(keys.service("api", "api-1")) is not None
    assert await release_dead(store, api, 4242) is True
    assert await store.get(keys.service("api", "api-1")) is None
    assert await store.get(keys.host_stats("api-1")) is None
    assert await release_dead(store, api, 4242) is False  # nothing left to release

"""The deployment's id against a real etcd: made once, the same for every asker."""

from __future__ import annotations

import asyncio

from services.compute.deployment import deployment_id
from services.core.etcd import Store


async def test_the_deployment_id_is_made_once_and_shared(store: Store) -> None:
    ids = await asyncio.gather(*(deployment_id(store) for _ in range(5)))
    assert len(set(ids)) == 1
    assert await deployment_id(store) == ids[0]

"""What a stack starts with, made once however many api replicas start together.

A replica seeds while it holds ``seeding/<name>``, a key put only when absent and bound to a lease
this process keeps alive: the others wait until it is gone and then find the thing seeded. If the
holder dies mid-seed its key goes with its lease and the next replica to start (or the one
waiting) seeds it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.core import keys
from services.core.etcd import Store
from services.core.lease import LeaseSession

log = logging.getLogger(__name__)
POLL_S = 0.2


@asynccontextmanager
async def seed_claim(store: Store, name: str, ttl_s: int) -> AsyncIterator[None]:
    """Holds ``seeding/<name>`` for the block, waiting while another process holds it."""
    key = keys.seeding(name)
    holder = f"{socket.gethostname()}:{os.getpid()}".encode()
    lease = LeaseSession(store, ttl_s)
    await lease.open()
    try:
        waiting = False
        while not (await store.txn([store.cmp_absent(key)], [store.op_put(key, holder, lease.lease_id)]))[0]:
            if not waiting:
                kv = await store.get(key)
                log.info("waiting for %s to finish seeding %s", kv.value.decode() if kv else "another api", name)
                waiting = True
            await asyncio.sleep(POLL_S)
        yield
    finally:
        await asyncio.shield(lease.close())  # the key goes at once, not after the TTL

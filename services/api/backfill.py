"""The indexes for records written before them, each written once per deployment at api start,
before the api serves (images, image members, aggregates' hosts and zones, servers and server
groups by project): paged, each record's entries only while it is unchanged, idempotent (replicas starting
together may both run them). See indexes.py."""

from __future__ import annotations

from services.api.admin import aggregates
from services.api.images import index as images
from services.api.server_groups import manager as server_groups
from services.api.servers import listing as servers
from services.core.etcd import Store


async def indexes(store: Store) -> int:
    """Writes what the indexes lack; how many records it indexed."""
    made = await images.backfill(store)
    made += await aggregates.backfill(store)
    made += await servers.backfill(store)
    return made + await server_groups.backfill(store)

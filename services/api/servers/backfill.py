"""The project index (``project_instances/``) for records written before it existed: written once
per deployment at api start, page by page, each index key only while its record is unchanged; a
marker key says it is done. Idempotent, so replicas starting together may both run it."""

from __future__ import annotations

import logging

from services.core import keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2

log = logging.getLogger(__name__)
DONE = "schema/project_instances"


async def index_projects(store: Store) -> int:
    """Indexes every record that its project's index lacks; how many it indexed."""
    if await store.get(DONE) is not None:
        return 0
    added = 0
    async for page in store.scan(keys.INSTANCES):
        for kv in page.kvs:
            server = state_pb2.InstanceRecord.FromString(kv.value).server
            index = keys.project_instance(server.project_id, server.id)
            ok, _ = await store.txn(
                [store.cmp_mod(kv.key, kv.mod_revision), store.cmp_absent(index)], [store.op_put(index, b"")]
            )
            added += int(ok)
    await store.put(DONE, b"1")
    if added:
        log.info("indexed %d server(s) by project", added)
    return added

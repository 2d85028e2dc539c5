"""The deployment's id: a random id written once under the prefix, the same for every process of
one stack (one etcd and prefix) and different for every other stack."""

from __future__ import annotations

from services.core import keys
from services.core.etcd import Store
from services.core.ids import new_id


async def deployment_id(store: Store) -> str:
    """The id, created by the first process to ask (a transaction, so two first askers agree)."""
    candidate = new_id()
    await store.txn([store.cmp_absent(keys.DEPLOYMENT)], [store.op_put(keys.DEPLOYMENT, candidate.encode())])
    kv = await store.get(keys.DEPLOYMENT)
    if kv is None:
        raise ConnectionError("the deployment id vanished right after it was written")
    return kv.value.decode()

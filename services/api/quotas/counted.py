"""The records that quotas count, written and removed together with their project's usage.

- a server's record is removed (the delete flow's last step) with its charge given back and the
  claim on its host released (a server holds a claim exactly when its record names a host);
- an image's record is written with the change of what it holds (once ACTIVE: one image and its
  bytes; a SAVING record holds nothing, so one an upload's lease takes away leaves no charge behind)
  and removed, with its members, with all of it given back. The charge is worked out from the record before
  and after, so any writer that goes through here keeps the usage exact; the image's index entries
  (images/index.py) change in the same transaction.
"""

from __future__ import annotations

import logging

from services.api.images import index as image_index
from services.api.images import members
from services.api.quotas import quota
from services.api.quotas.quota import Quotas
from services.core import claims, instances, keys, retry
from services.core.claims import Writes
from services.core.errors import NotFound
from services.core.etcd import AMBIGUOUS, Store
from stratus.v1 import images_pb2

log = logging.getLogger(__name__)
MEMBERS_WITH_IMAGE = 100  # members removed in the image's own transaction (etcd: at most 128 ops)


async def delete_instance(store: Store, instance_id: str) -> None:
    """Removes the server's record and its request index, gives its charge back and releases its
    claim on the host the record names, in one transaction (so a charge is given back exactly
    once, and the claim goes exactly when the record does)."""

    async def attempt() -> retry.Again | None:
        try:
            record, revision = await instances.get(store, instance_id)
        except NotFound:
            return None
        key = keys.instance(instance_id)
        ops = instances.delete_ops(store, record)
        give_back = {r: -n for r, n in quota.instance_charge(record).items()}
        charge = await quota.release(store, record.server.project_id, give_back)
        claim = await claims.release_ops(store, record.server.host, instance_id) if record.server.host else Writes()
        compares = [store.cmp_mod(key, revision), *charge.compares, *claim.compares]
        try:
            ok, _ = await store.txn(compares, [*ops, *charge.ops, *claim.ops])
        except AMBIGUOUS as exc:  # read again: the record is gone if it landed
            log.warning("deleting server %s: etcd's answer was lost (%s); reading back", instance_id, exc)
            ok = False
        return None if ok else retry.AGAIN

    await retry.until_done(attempt, what=f"server {instance_id}", attempts=quota.MAX_ATTEMPTS)


def image_charge(image: images_pb2.Image | None) -> dict[str, int]:
    """What an image holds of its owner's quota: itself and its bytes once ACTIVE, nothing before
    (uploads are checked for a free image at their start, bound at their end)."""
    if image is None or image.status != images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
        return {}
    return {"images": 1, "image_bytes": image.size_bytes}


async def _read_image(store: Store, image_id: str) -> tuple[images_pb2.Image | None, int]:
    kv = await store.get(keys.image(image_id))
    return (images_pb2.Image.FromString(kv.value), kv.mod_revision) if kv else (None, 0)


async def write_image(ledger: Quotas, image: images_pb2.Image | None, image_id: str, old: images_pb2.Image | None,
                 revision: int) -> bool:  # fmt: skip
    """Replaces ``old`` (read at ``revision``) by ``image`` (None: removes it) with the usage change;
    False when the image record moved meanwhile."""
    store = ledger.store
    key = keys.image(image_id)
    if image is not None:  # no lease: an upload's ends here
        ops = [store.op_put(key, image.SerializeToString()), *image_index.write_ops(store, old, image)]
    else:  # its members and every index entry go with it (a member change moves the record too)
        ops = [store.op_delete(key), store.op_delete_prefix(keys.image_members(image_id)),
               *image_index.write_ops(store, old, None),
               *image_index.member_ops(store, image_id, await members.projects_of(store, image_id))]  # fmt: skip
    owner = (image or old or images_pb2.Image()).owner_project_id
    if old is not None and image is not None and old.owner_project_id != image.owner_project_id:
        raise ValueError(f"image {image_id} cannot change owner")
    delta = quota.difference(image_charge(image), image_charge(old))
    return await ledger.commit(owner, delta, [store.cmp_mod(key, revision)], ops)


async def remove_image(ledger: Quotas, image_id: str) -> None:
    """Removes the image's record (if any) and gives back all it held. An image with more members
    than one transaction removes with it loses the extra ones first."""
    await members.shed(ledger.store, image_id, keep=MEMBERS_WITH_IMAGE)

    async def attempt() -> retry.Again | None:
        old, revision = await _read_image(ledger.store, image_id)
        if old is None or await write_image(ledger, None, image_id, old, revision):
            return None
        return retry.AGAIN

    await retry.until_done(attempt, what=f"image {image_id}", attempts=quota.MAX_ATTEMPTS)

"""SnapshotServer's first step: the new image (SAVING) and the server's task, written together."""

from __future__ import annotations

from services.api.flows import action_log, actions
from services.api.images import index as image_index
from services.api.images.index import INSTANCE_PROPERTY
from services.api.images.minimums import snapshot_minimums
from services.api.quotas.counted import image_charge
from services.api.quotas.quota import Quotas
from services.api.validation import Violations
from services.core import instances, keys, retry
from services.core.etcd import Store
from services.core.ids import new_id
from stratus.v1 import images_pb2, servers_pb2


def validate_snapshot(instance_id: str, image_name: str) -> None:
    v = Violations()
    v.required("id", instance_id)
    v.name("image_name", image_name)
    v.raise_if_any()


def snapshot_image(
    name: str, server: servers_pb2.Server, source: images_pb2.Image | None, project_id: str
) -> images_pb2.Image:
    """A qcow2 image of ``server``'s disk, SAVING, PRIVATE to ``project_id``: the properties of the
    image the server was built from (when it still exists), which server and image it came from,
    and the minimums a server booted from it needs (minimums.snapshot_minimums, as Nova's)."""
    min_disk_gb, min_ram_mb = snapshot_minimums(server, source)
    image = images_pb2.Image(
        id=new_id(), name=name, status=images_pb2.ImageStatus.IMAGE_STATUS_SAVING, disk_format="qcow2",
        container_format="bare", owner_project_id=project_id, created_at=instances.now(),
        updated_at=instances.now(), visibility=images_pb2.ImageVisibility.IMAGE_VISIBILITY_PRIVATE,
        min_disk_gb=min_disk_gb, min_ram_mb=min_ram_mb,
    )  # fmt: skip
    if source is not None:
        image.properties.update(source.properties)
    image.properties.update({"image_type": "snapshot", INSTANCE_PROPERTY: server.id, "base_image_ref": server.image_id})
    return image


async def begin_snapshot(
    store: Store, instance_id: str, image: images_pb2.Image, ledger: Quotas | None = None,
    action: servers_pb2.ServerAction | None = None,
) -> servers_pb2.Server:  # fmt: skip
    """Sets the server's task IMAGE_SNAPSHOT (or refuses, writing nothing) and creates the SAVING
    image, in one transaction: there is never a snapshot task without its image, nor the reverse.
    Refused at once when the owner has no image left in its quota; the image is charged when its
    bytes are whole (ImagesManager.activate), which is where the limit binds; the image's index
    entries are written with it (images/index.py). ``action``: the snapshot's action, created in
    the same transaction, which the record then names as its current one."""
    ledger = ledger or Quotas(store)
    await ledger.charge(image.owner_project_id, {"images": 1})

    async def attempt() -> servers_pb2.Server | retry.Again:
        record, revision = await instances.get(store, instance_id)
        actions.begin("snapshot", record.server)
        if action is not None:
            record.action_id = action.id
        instances.stamp(record)
        key = keys.instance(instance_id)
        ok = await ledger.commit(
            image.owner_project_id, image_charge(image), [store.cmp_mod(key, revision)],
            [store.op_put(key, record.SerializeToString()),
             store.op_put(keys.image(image.id), image.SerializeToString()), *image_index.write_ops(store, None, image),
             *([action_log.op_write(store, action)] if action else [])],
        )  # fmt: skip
        return record.server if ok else retry.AGAIN

    return await retry.until_done(attempt, what=f"server {instance_id}")

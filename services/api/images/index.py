"""The images' indexes, written in the transaction that writes the image record, with its lease (an
upload's SAVING record and its entries go together), so they name exactly the records there are:

- ``image_names/<name>/<owner>/<id>``: an image by name in its owner's project, and every PUBLIC
  one under ``*public`` too (a name resolves tier by tier, see lookup.py);
- ``project_images/<owner>/<id>``: a project's images, and the PUBLIC ones under ``*public``
  (ListImages merges these in id order with the images shared with the caller);
- ``project_shared_images/<project>/<id>``: the images a project is a member of, written with the
  member (members.py) and removed with it or with the image;
- ``saving_snapshots/<server>/<image>``: a SAVING image naming a server in ``instance_uuid`` (a
  snapshot being saved, resumed after an api restart).

Records written before these indexes existed are indexed once per deployment at api start
(``backfill``: paged, each record's entries only while it is unchanged, idempotent).
"""

from __future__ import annotations

from etcd3aio._protobuf import RequestOp

from services.api import indexes
from services.api.images.access import PUBLIC, visibility_of
from services.core import keys
from services.core.etcd import KV, Store
from stratus.v1 import images_pb2

# A snapshot's properties name the server it was taken of (as Nova's do).
INSTANCE_PROPERTY = "instance_uuid"
SAVING = images_pb2.ImageStatus.IMAGE_STATUS_SAVING


def index_keys(image: images_pb2.Image) -> set[str]:
    """The index entries ``image`` has (none for a record being removed)."""
    owner = image.owner_project_id
    entries = {keys.image_name(image.name, owner, image.id), keys.project_image(owner, image.id)}
    if visibility_of(image) == PUBLIC:
        entries |= {keys.image_name(image.name, keys.PUBLIC_SCOPE, image.id),
                    keys.project_image(keys.PUBLIC_SCOPE, image.id)}  # fmt: skip
    server = image.properties.get(INSTANCE_PROPERTY, "")
    if image.status == SAVING and server and "/" not in server:
        entries.add(keys.saving_snapshot(server, image.id))
    return entries


def write_ops(
    store: Store, old: images_pb2.Image | None, new: images_pb2.Image | None, lease: int = 0
) -> list[RequestOp]:
    """The index changes of a record going from ``old`` to ``new`` (None: absent), for its
    transaction: entries ``new`` no longer has go, and all of its own are put again (with the
    record's ``lease``: an upload's ends when the image turns ACTIVE)."""
    kept = index_keys(new) if new is not None else set()
    gone = (index_keys(old) - kept) if old is not None else set()
    return [*(store.op_delete(k) for k in sorted(gone)), *(store.op_put(k, b"", lease) for k in sorted(kept))]


def member_ops(store: Store, image_id: str, projects: list[str]) -> list[RequestOp]:
    """Removes the image from the shared indexes of ``projects`` (its members, when it goes)."""
    return [store.op_delete(keys.project_shared_image(p, image_id)) for p in projects]


async def backfill(store: Store) -> int:
    """Indexes the images and members written before the indexes existed (once per deployment)."""

    def image_ops(kv: KV) -> list[RequestOp]:
        return write_ops(store, None, images_pb2.Image.FromString(kv.value), kv.lease)

    def member_entry(kv: KV) -> list[RequestOp]:
        image_id, project_id = keys.split_image_member(kv.key)
        return [store.op_put(keys.project_shared_image(project_id, image_id), b"")]

    made = await indexes.backfill(store, "image_indexes", keys.IMAGES, image_ops)
    return made + await indexes.backfill(store, "image_member_index", keys.IMAGE_MEMBERS, member_entry)

"""Image members: the projects a SHARED image is shared with, one key each under the image
(``image_members/<image>/<project>``) and one in the project's index of the images shared with it
(``project_shared_images/<project>/<image>``), written and removed together.

Every change is one transaction that also re-writes the image record (its ``updated_at``) on
the condition it is unchanged: the image still exists, and two changes to one image's members
serialise on it, so the bound on their number holds under races.
"""

from __future__ import annotations

from services.api.images.access import SHARED, Viewer, check_owner, visibility_of
from services.api.validation import ID_CHARS, Violations
from services.core import keys, retry
from services.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from services.core.etcd import KV, Store
from services.core.instances import now
from services.core.states import name_of
from stratus.v1 import images_pb2

MAX_IMAGE_MEMBERS = 128
SHED_BATCH = 50  # members removed in one transaction (two keys each) before a large image goes


def validate_member(image_ref: str, project_id: str) -> None:
    v = Violations()
    v.required("image_id", image_ref)
    v.required("project_id", project_id)
    v.pattern("project_id", project_id, ID_CHARS, "a project id: letters, digits, '.', '_' or '-'")
    v.raise_if_any()


async def _member_kvs(store: Store, image_id: str) -> list[KV]:
    """An image's member keys: at most ``MAX_IMAGE_MEMBERS`` by design (``add`` holds the bound)."""
    kvs, _ = await store.read_all(keys.image_members(image_id), most=MAX_IMAGE_MEMBERS)
    return kvs


async def members_of(store: Store, image_id: str) -> list[images_pb2.ImageMember]:
    return [images_pb2.ImageMember.FromString(kv.value) for kv in await _member_kvs(store, image_id)]


async def projects_of(store: Store, image_id: str) -> list[str]:
    """The projects the image is shared with."""
    return [keys.split_image_member(kv.key)[1] for kv in await _member_kvs(store, image_id)]


async def is_member(store: Store, image_id: str, project_id: str) -> bool:
    return bool(project_id) and await store.get(keys.image_member(image_id, project_id)) is not None


async def shed(store: Store, image_id: str, keep: int) -> None:
    """Removes members (each with its index entry) until at most ``keep`` are left, ``SHED_BATCH`` a
    transaction, while the image is unchanged: what deleting an image with more members than one
    transaction may remove does first."""

    async def attempt() -> retry.Again | None:  # each batch, landed or not, is followed by a new look
        image = await store.get(keys.image(image_id))
        if image is None:
            return None
        kvs = await _member_kvs(store, image_id)
        if len(kvs) <= keep:
            return None
        extra = kvs[: min(SHED_BATCH, len(kvs) - keep)]
        ops = [op for kv in extra for op in (store.op_delete(kv.key), store.op_delete(_entry(kv.key)))]
        await store.txn([store.cmp_mod(image.key, image.mod_revision)], ops)
        return retry.AGAIN

    await retry.until_done(attempt, what=f"image {image_id}")


def _entry(member_key: str) -> str:
    """The shared index entry of the member at ``member_key``."""
    image_id, project_id = keys.split_image_member(member_key)
    return keys.project_shared_image(project_id, image_id)


def _touched(kv: KV) -> tuple[images_pb2.Image, bytes]:
    image = images_pb2.Image.FromString(kv.value)
    image.updated_at.CopyFrom(now())
    return image, image.SerializeToString()


async def add(store: Store, image_id: str, project_id: str, viewer: Viewer) -> images_pb2.ImageMember:
    """``image_id`` (seen by the caller) shared with ``project_id``."""
    member = images_pb2.ImageMember(image_id=image_id, project_id=project_id, created_at=now())
    key = keys.image_member(image_id, project_id)

    async def attempt() -> images_pb2.ImageMember | retry.Again:
        kv = await _image_kv(store, image_id)
        image, value = _touched(kv)
        check_owner(image, viewer, "share it")
        if visibility_of(image) != SHARED:
            seen = name_of(images_pb2.ImageVisibility, visibility_of(image), "IMAGE_VISIBILITY_")
            raise FailedPrecondition(f"image {image_id} is {seen}: only a SHARED image has members; "
                                     "make it SHARED first", reason="IMAGE_NOT_SHARED")  # fmt: skip
        if project_id == image.owner_project_id:
            raise InvalidArgument([("project_id", "is the image's own project")])
        current = await members_of(store, image_id)
        if any(m.project_id == project_id for m in current):
            raise AlreadyExists(f"image {image_id} is already shared with project {project_id}",
                                reason="IMAGE_MEMBER_EXISTS")  # fmt: skip
        if len(current) >= MAX_IMAGE_MEMBERS:
            raise ResourceExhausted(f"image {image_id} is shared with {MAX_IMAGE_MEMBERS} projects, the most "
                                    "it may be", reason="IMAGE_MEMBER_LIMIT")  # fmt: skip
        ok, _ = await store.txn(
            [store.cmp_mod(kv.key, kv.mod_revision), store.cmp_absent(key)],
            [store.op_put(kv.key, value, kv.lease), store.op_put(key, member.SerializeToString()),
             store.op_put(_entry(key), b"")],
        )  # fmt: skip
        return member if ok else retry.AGAIN

    return await retry.until_done(attempt, what=f"image {image_id}")


async def remove(store: Store, image_id: str, project_id: str, viewer: Viewer) -> None:
    key = keys.image_member(image_id, project_id)

    async def attempt() -> retry.Again | None:
        kv = await _image_kv(store, image_id)
        image, value = _touched(kv)
        check_owner(image, viewer, "change whom it is shared with")
        member = await store.get(key)
        if member is None:
            raise NotFound("image member", project_id, field="project_id")
        ok, _ = await store.txn(
            [store.cmp_mod(kv.key, kv.mod_revision), store.cmp_mod(key, member.mod_revision)],
            [store.op_put(kv.key, value, kv.lease), store.op_delete(key), store.op_delete(_entry(key))],
        )
        return None if ok else retry.AGAIN

    await retry.until_done(attempt, what=f"image {image_id}")


async def _image_kv(store: Store, image_id: str) -> KV:
    kv = await store.get(keys.image(image_id))
    if kv is None:
        raise NotFound("image", image_id, field="image_id")
    return kv

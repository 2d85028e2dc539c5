"""Finding images through their indexes (index.py), never by reading every record:

- ``by_name``: the image a name means to a viewer, tier by tier as access.py says: its project's
  images of that name, then the SHARED ones shared with it, then the PUBLIC ones, then (an admin)
  any. The name index gives the first, third and fourth: at most ``NAMED_MOST`` records each
  (more than one is ambiguous anyway); the second reads the images shared with the viewer (as
  many as other projects shared with it, each within its owner's image quota);
- ``visible``: the images a viewer may see, in id order, as a listing reads them: every image for
  an admin; else its project's, the PUBLIC ones and those shared with it, their indexes merged by id;
- ``saving_snapshot``: the SAVING snapshot image of a server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.api.images import access
from services.api.images.access import SHARED, Viewer, can_read, visibility_of
from services.api.images.index import INSTANCE_PROPERTY, SAVING
from services.api.indexes import GET_BATCH, first_ids, get_many, ids, merged
from services.api.indexes import records as all_records
from services.core import keys
from services.core.errors import NotFound
from services.core.etcd import Store
from stratus.v1 import images_pb2

Image = images_pb2.Image
NAMED_MOST = 100  # images of one name read per tier: more than one is ambiguous anyway
SHARED_STREAM = 2  # the shared index's place among the streams visible merges


async def records(store: Store, image_ids: list[str]) -> list[Image]:
    """The images with these ids that still exist, in that order."""
    return [Image.FromString(kv.value) for kv in await get_many(store, [keys.image(i) for i in image_ids])]


async def owned_named(store: Store, name: str, owner: str) -> list[Image]:
    """The images of ``owner`` (a project, ``""`` for the stack's own, or ``PUBLIC_SCOPE``) called ``name``."""
    found = await records(store, await first_ids(store, keys.image_names(name, owner), NAMED_MOST))
    return [i for i in found if i.name == name]


async def _shared_named(store: Store, name: str, project_id: str) -> list[Image]:
    """The SHARED images shared with ``project_id`` called ``name``."""
    found: list[Image] = []
    batch: list[str] = []
    async for image_id in ids(store, keys.project_shared_images(project_id)):
        batch.append(image_id)
        if len(batch) == NAMED_MOST:
            found += [i for i in await records(store, batch) if i.name == name and visibility_of(i) == SHARED]
            batch = []
            if len(found) >= NAMED_MOST:
                return found
    return found + [i for i in await records(store, batch) if i.name == name and visibility_of(i) == SHARED]


async def _any_named(store: Store, name: str) -> list[Image]:
    """Images called ``name`` whoever owns them (an admin's last tier)."""
    entries = await first_ids(store, keys.image_names(name), NAMED_MOST)
    unique = list(dict.fromkeys(entry.rsplit("/", 1)[-1] for entry in entries))
    return [i for i in await records(store, unique) if i.name == name]


async def _tiers(store: Store, name: str, viewer: Viewer) -> AsyncIterator[tuple[list[Image], set[str]]]:
    """Each tier's images called ``name``, with those of them shared with the viewer."""
    yield await owned_named(store, name, viewer.project_id), set()
    shared = await _shared_named(store, name, viewer.project_id)
    yield shared, {i.id for i in shared}
    yield await owned_named(store, name, keys.PUBLIC_SCOPE), set()
    if viewer.is_admin:
        yield await _any_named(store, name), set()


async def by_name(store: Store, name: str, viewer: Viewer, field: str) -> Image:
    """The image called ``name`` in the first tier that has one; NOT_FOUND when none has, and
    INVALID_ARGUMENT when that tier has two (access.by_name says which wins, over what one read)."""
    async for found, member in _tiers(store, name, viewer):
        if found:
            return access.by_name(found, name, viewer, member.__contains__, field)
    raise NotFound("image", name, field=field)


async def saving_snapshot(store: Store, instance_id: str) -> Image | None:
    """The snapshot of this server still being saved, if there is one."""
    found = await records(store, await first_ids(store, keys.saving_snapshots(instance_id), NAMED_MOST))
    return next((i for i in found if i.status == SAVING and i.properties.get(INSTANCE_PROPERTY) == instance_id),
                None)  # fmt: skip


# ---- listing ----------------------------------------------------------------------------------
async def visible(store: Store, viewer: Viewer, after: str, batch: int = GET_BATCH) -> AsyncIterator[Image]:
    """The images ``viewer`` may see with ids after ``after``, in id order, read as they are
    consumed (``batch`` records at a time through the indexes)."""
    if viewer.is_admin:
        async for kv in all_records(store, keys.IMAGES, keys.image(after) if after else ""):
            yield Image.FromString(kv.value)
        return
    streams = [ids(store, keys.project_images(viewer.project_id), after),
               ids(store, keys.project_images(keys.PUBLIC_SCOPE), after),
               ids(store, keys.project_shared_images(viewer.project_id), after)]  # fmt: skip
    pending: list[tuple[str, bool]] = []
    async for image_id, had in merged(streams):
        pending.append((image_id, bool(had & (1 << SHARED_STREAM))))
        if len(pending) >= batch:
            for image in await _readable(store, pending, viewer):
                yield image
            pending = []
    for image in await _readable(store, pending, viewer):
        yield image


async def _readable(store: Store, batch: list[tuple[str, bool]], viewer: Viewer) -> list[Image]:
    member = {image_id for image_id, shared in batch if shared}
    found = await records(store, [image_id for image_id, _ in batch])
    return [i for i in found if can_read(i, viewer, i.id in member)]

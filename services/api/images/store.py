"""The internal ImageStore (stratus.imagestore.v1): image bytes for the computes, which call with the
stack's service token (see auth.py). Computes read the images they boot and write the snapshots the
api asked them for.

A write that fails removes the part file and deletes the image record (as a failed upload does),
so no half-made image is left; only when the call is cancelled (the compute or this api went away)
the record stays SAVING, for the snapshot flow that owns it to retry or discard. Reads and writes
here see every image, whatever its visibility: the callers are the stack's own computes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.api.images.manager import ImagesManager
from services.api.images.upload import chunks_of
from services.api.validation import ID_CHARS, Violations
from services.core.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, QuotaExceeded
from services.core.etcd import Store
from services.core.states import name_of
from stratus.imagestore.v1 import imagestore_pb2
from stratus.v1 import images_pb2

Status = images_pb2.ImageStatus


class ImageStoreManager:
    def __init__(self, store: Store, images: ImagesManager) -> None:
        self._store = store
        self._images = images

    async def _image(self, image_id: str, status: int) -> tuple[images_pb2.Image, int]:
        v = Violations()
        v.required("image_id", image_id)
        v.pattern("image_id", image_id, ID_CHARS, "an image id")
        v.raise_if_any()
        found = await self._images.find(image_id)
        if found is None:
            raise NotFound("image", image_id, field="image_id")
        image, revision = found
        if image.status != status:
            now, wanted = name_of(Status, image.status, "IMAGE_STATUS_"), name_of(Status, status, "IMAGE_STATUS_")
            raise FailedPrecondition(f"image {image_id} is {now}, not {wanted}", reason="IMAGE_STATE")
        return image, revision

    async def read(self, image_id: str) -> AsyncIterator[imagestore_pb2.ReadImageResponse]:
        """An ACTIVE image: its metadata, then its bytes in 1 MiB chunks."""
        image, _ = await self._image(image_id, Status.IMAGE_STATUS_ACTIVE)
        yield imagestore_pb2.ReadImageResponse(image=image)
        async for chunk in self._images.read_bytes(image.id):
            yield imagestore_pb2.ReadImageResponse(chunk=chunk)

    async def write(self, messages: AsyncIterator[imagestore_pb2.WriteImageRequest]) -> images_pb2.Image:
        """The bytes of a SAVING image; it is ACTIVE with their size and sha256 when they are whole."""
        first = await anext(messages, None)
        if first is None or first.WhichOneof("data") != "image_id":
            raise InvalidArgument([("image_id", "the first message must name the image")])
        image, _ = await self._image(first.image_id, Status.IMAGE_STATUS_SAVING)
        try:
            await self._images.receive(image, chunks_of(messages, "image_id"))
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._images.discard(image.id)
            raise
        try:
            await self._images.activate(image)  # charges its owner the image and its bytes
        except (Aborted, QuotaExceeded):
            await self._images.discard(image.id)  # deleted meanwhile, or over quota: the bytes go too
            raise
        return image

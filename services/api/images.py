"""Images: a record in etcd (SAVING, then ACTIVE with size and checksum) and the bytes on disk.
An upload that fails or is cancelled leaves neither behind."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.api import paging, quota_records
from services.api.image_files import ImageFiles, read_chunks
from services.api.quotas import Quotas
from services.api.validation import Violations, page_size
from services.core import context, keys
from services.core.boot_sector import tiny_image
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.etcd import Store
from services.core.ids import new_id
from services.core.instances import now
from stratus.v1 import images_pb2

log = logging.getLogger(__name__)
DISK_FORMATS = ("raw", "qcow2")
CONTAINER_FORMATS = ("bare",)
MAX_IMAGE_BYTES = 64 * 1024**3
QCOW2_MAGIC = b"QFI\xfb"
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
Status = images_pb2.ImageStatus
# A snapshot's properties name the server it was taken of (as Nova's do).
INSTANCE_PROPERTY = "instance_uuid"
GUEST_PROPERTIES = {"architecture": "x86_64", "hw_firmware_type": "bios", "os_distro": "stratus-tiny"}
BOOT_SECTOR_PROPERTIES = {"architecture": "x86_64", "hw_firmware_type": "bios"}


def validate(meta: images_pb2.Image) -> None:
    v = Violations()
    v.name("metadata.name", meta.name)
    if meta.disk_format not in DISK_FORMATS:
        v.add("metadata.disk_format", f"must be one of {', '.join(DISK_FORMATS)}")
    if meta.container_format and meta.container_format not in CONTAINER_FORMATS:
        v.add("metadata.container_format", f"must be one of {', '.join(CONTAINER_FORMATS)}")
    v.mapping("metadata.properties", meta.properties)
    if meta.checksum and not SHA256_HEX.match(meta.checksum):
        v.add("metadata.checksum", "must be the sha256 of the bytes, 64 hex digits")
    v.raise_if_any()


def check_magic(head: bytes, disk_format: str) -> None:
    """The first bytes of an upload agree with its disk_format: a qcow2 starts with the qcow2
    magic, a raw image does not (a qcow2 declared raw would boot as garbage, or worse)."""
    is_qcow2 = head.startswith(QCOW2_MAGIC)
    if disk_format == "qcow2" and not is_qcow2:
        raise InvalidArgument([("metadata.disk_format", "is qcow2 but the bytes do not start with the qcow2 magic")])
    if disk_format == "raw" and is_qcow2:
        raise InvalidArgument([("metadata.disk_format", "is raw but the bytes are a qcow2 image")])


async def sniffed(chunks: AsyncIterator[bytes], disk_format: str) -> AsyncIterator[bytes]:
    """``chunks``, once their first bytes are checked against ``disk_format`` (``check_magic``)."""
    head = b""
    checked = False
    async for chunk in chunks:
        if not checked:
            head += chunk[: len(QCOW2_MAGIC) - len(head)]
            if len(head) == len(QCOW2_MAGIC):
                check_magic(head, disk_format)
                checked = True
        yield chunk
    if not checked and head:
        check_magic(head, disk_format)


def check_checksum(expected: str, received: str) -> None:
    if expected and expected.lower() != received:
        raise InvalidArgument([("metadata.checksum", f"expected {expected.lower()}, received {received}")])


async def chunks_of(messages: AsyncIterator[Any], first: str) -> AsyncIterator[bytes]:
    """The chunks of the messages after the first; another ``first`` among them is refused."""
    async for msg in messages:
        if msg.WhichOneof("data") != "chunk":
            raise InvalidArgument([("chunk", f"only the first message may carry the {first}")])
        yield msg.chunk


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def seed_source(seed_file: Path | None) -> tuple[images_pb2.Image, AsyncIterator[bytes], str]:
    """What ``tiny`` is made of: the built guest (qcow2, streamed from disk) if it is there, else the
    built-in boot sector. Returns the metadata, the bytes and where they come from."""
    if seed_file is not None and seed_file.is_file():
        meta = images_pb2.Image(name="tiny", disk_format="qcow2", properties=GUEST_PROPERTIES)
        return meta, read_chunks(seed_file), str(seed_file)
    log.warning("no guest image at %s (deploy/build-guest.sh makes one): the image 'tiny' is a boot sector "
                "that only prints a line", seed_file)  # fmt: skip
    meta = images_pb2.Image(name="tiny", disk_format="raw", properties=BOOT_SECTOR_PROPERTIES)
    return meta, one_chunk(tiny_image()), "the built-in boot sector"


class ImagesManager:
    def __init__(self, store: Store, files: ImageFiles, ledger: Quotas | None = None) -> None:
        self._store = store
        self._files = files
        self.quotas = ledger or Quotas(store)

    async def upload(self, messages: AsyncIterator[images_pb2.UploadImageRequest]) -> images_pb2.Image:
        first = await anext(messages, None)
        if first is None or first.WhichOneof("data") != "metadata":
            raise InvalidArgument([("metadata", "the first message must carry the image metadata")])
        validate(first.metadata)
        image = images_pb2.Image(
            id=new_id(), name=first.metadata.name, status=Status.IMAGE_STATUS_SAVING,
            disk_format=first.metadata.disk_format, container_format=first.metadata.container_format or "bare",
            properties=first.metadata.properties, owner_project_id=context.current().project_id,
            created_at=now(), updated_at=now(),
        )  # fmt: skip
        await self.put(image)
        try:
            await self.receive(image, sniffed(chunks_of(messages, "metadata"), image.disk_format))
            check_checksum(first.metadata.checksum, image.checksum)
            await self.put(image)
        except BaseException:
            # Failed, refused or cancelled (the client went away): neither the record nor the
            # bytes stay; shielded so a second cancellation cannot leave it SAVING.
            await asyncio.shield(self.discard(image.id))
            raise
        return image

    async def receive(self, image: images_pb2.Image, chunks: AsyncIterator[bytes]) -> None:
        """Writes the image's bytes (at least one, at most MAX_IMAGE_BYTES) and marks ``image`` ACTIVE
        with their size and sha256; storing the record is the caller's. On any failure the part
        file is removed and ``image`` is left as it was."""
        writer = self._files.writer(image.id)
        try:
            async for chunk in chunks:
                if writer.size + len(chunk) > MAX_IMAGE_BYTES:
                    raise InvalidArgument([("chunk", f"images are limited to {MAX_IMAGE_BYTES} bytes")])
                await writer.write(chunk)
            if writer.size == 0:
                raise InvalidArgument([("chunk", "the image has no bytes")])
            checksum = await writer.commit()
        except BaseException:
            writer.abort()
            raise
        image.checksum, image.size_bytes, image.status = checksum, writer.size, Status.IMAGE_STATUS_ACTIVE
        image.updated_at.CopyFrom(now())

    async def put(self, image: images_pb2.Image) -> None:
        """Writes the record, charging the owner's images and image_bytes quotas the change."""
        await quota_records.put_image(self.quotas, image)

    async def find(self, image_id: str) -> tuple[images_pb2.Image, int] | None:
        """The image with this id (not a name) and its record's mod revision, or None."""
        kv = await self._store.get(keys.image(image_id))
        return (images_pb2.Image.FromString(kv.value), kv.mod_revision) if kv else None

    async def discard(self, image_id: str) -> None:
        """Removes the record and the bytes, whoever owns them (a snapshot that failed)."""
        await quota_records.remove_image(self.quotas, image_id)  # gives its quota charge back
        self._files.remove(image_id)

    async def saving_snapshot_of(self, instance_id: str) -> images_pb2.Image | None:
        """The snapshot of this server still being saved, if there is one."""
        for image in await self._all():
            if image.status == Status.IMAGE_STATUS_SAVING and image.properties.get(INSTANCE_PROPERTY) == instance_id:
                return image
        return None

    def read_bytes(self, image_id: str) -> AsyncIterator[bytes]:
        """The bytes of an image, in 1 MiB chunks."""
        return self._files.read(image_id)

    async def get(self, id_or_name: str, field: str = "id") -> images_pb2.Image:
        if not id_or_name:
            raise InvalidArgument([(field, "is required")])
        kv = await self._store.get(keys.image(id_or_name))
        if kv is not None:
            return images_pb2.Image.FromString(kv.value)
        named = [i for i in await self._all() if i.name == id_or_name]
        if len(named) > 1:
            raise InvalidArgument([(field, f"{len(named)} images are named {id_or_name!r}; give the id")])
        if not named:
            raise NotFound("image", id_or_name, field=field)
        return named[0]

    async def _all(self) -> list[images_pb2.Image]:
        kvs, _ = await self._store.get_prefix(keys.IMAGES)
        return [images_pb2.Image.FromString(kv.value) for kv in kvs]

    async def list(self, size: int, token: str) -> images_pb2.ListImagesResponse:
        limit = page_size(size)
        after = paging.decode(token, keys.IMAGES)
        kvs, _ = await self._store.get_prefix(keys.IMAGES, start_after=after, limit=limit + 1)
        images = [images_pb2.Image.FromString(kv.value) for kv in kvs[:limit]]
        next_token = paging.encode(kvs[limit - 1].key) if len(kvs) > limit else ""
        return images_pb2.ListImagesResponse(images=images, next_page_token=next_token)

    async def delete(self, id_or_name: str) -> None:
        image = await self.get(id_or_name)
        ctx = context.current()
        if not ctx.is_admin and image.owner_project_id != ctx.project_id:
            raise PermissionDenied(f"image {image.id} belongs to another project")
        await quota_records.remove_image(self.quotas, image.id)  # gives its quota charge back
        self._files.remove(image.id)

    async def download(self, id_or_name: str) -> AsyncIterator[bytes]:
        image = await self.get(id_or_name)
        if image.status != Status.IMAGE_STATUS_ACTIVE:
            raise FailedPrecondition(f"image {image.id} is not ACTIVE yet")
        async for chunk in self._files.read(image.id):
            yield chunk

    async def seed(self, seed_file: Path | None = None) -> None:
        if any(i.name == "tiny" for i in await self._all()):
            return
        meta, chunks, source = seed_source(seed_file)
        meta.container_format = "bare"

        async def stream() -> AsyncIterator[images_pb2.UploadImageRequest]:
            yield images_pb2.UploadImageRequest(metadata=meta)
            async for chunk in chunks:
                yield images_pb2.UploadImageRequest(chunk=chunk)

        await self.upload(stream())
        log.info("seeded the image 'tiny' from %s", source)

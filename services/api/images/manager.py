"""Images: a record in etcd (SAVING, then ACTIVE with size and checksum) and the bytes on disk.
An upload that fails or is cancelled leaves neither behind; while SAVING its record is bound to a
lease the uploading api keeps alive, so an api that dies mid-upload leaves no SAVING record either
(and its bytes are swept). Who sees and changes what: access.py; members: members.py; the indexes
written with each record and the reads through them: index.py, lookup.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from services.api import paging
from services.api.images import index, lookup, members
from services.api.images.access import (
    PRIVATE,
    PUBLIC,
    SHARED,
    Viewer,
    can_read,
    check_owner,
    check_visibility,
    visibility_of,
)
from services.api.images.files import ImageFiles, read_chunks
from services.api.images.minimums import DiskMeter, validate_minimums
from services.api.images.upload import check_checksum, chunks_of, describe_size, sniffed, validate
from services.api.indexes import GET_BATCH, get_many
from services.api.quotas import counted
from services.api.quotas.quota import Quotas
from services.api.seeding import seed_claim
from services.api.validation import Violations, page_size
from services.core import context, keys, retry
from services.core.boot_sector import tiny_image
from services.core.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from services.core.etcd import AMBIGUOUS, KV, Store
from services.core.ids import new_id
from services.core.instances import now
from services.core.lease import LeaseSession
from services.core.message_limits import fill_page_async
from services.core.supervise import spawn_supervised
from stratus.v1 import images_pb2

log = logging.getLogger(__name__)
MAX_IMAGE_BYTES = 64 * 1024**3  # the default of ApiSettings.max_image_bytes
UPLOAD_LEASE_TTL_S = 6
Status = images_pb2.ImageStatus
GUEST_PROPERTIES = {"architecture": "x86_64", "hw_firmware_type": "bios", "os_distro": "stratus-tiny"}
BOOT_SECTOR_PROPERTIES = {"architecture": "x86_64", "hw_firmware_type": "bios"}


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
    def __init__(
        self, store: Store, files: ImageFiles, ledger: Quotas | None = None, max_bytes: int = MAX_IMAGE_BYTES,
        lease_ttl_s: int = UPLOAD_LEASE_TTL_S,
    ) -> None:  # fmt: skip
        self._store = store
        self._files = files
        self.quotas = ledger or Quotas(store)
        self._max_bytes = max_bytes
        self._lease_ttl_s = lease_ttl_s
        self._sweeper: asyncio.Task[None] | None = None

    async def upload(
        self, messages: AsyncIterator[images_pb2.UploadImageRequest], max_bytes: int | None = None
    ) -> images_pb2.Image:
        """A user's upload, bound by the ``max_image_bytes`` setting (``max_bytes``: the stack's
        own seeding, which is the operator's and not bound by the users' limit)."""
        first = await anext(messages, None)
        if first is None or first.WhichOneof("data") != "metadata":
            raise InvalidArgument([("metadata", "the first message must carry the image metadata")])
        validate(first.metadata)
        check_visibility(first.metadata.visibility, Viewer.current(), "metadata.visibility")
        image = images_pb2.Image(
            id=new_id(), name=first.metadata.name, status=Status.IMAGE_STATUS_SAVING,
            disk_format=first.metadata.disk_format, container_format=first.metadata.container_format or "bare",
            properties=first.metadata.properties, owner_project_id=context.current().project_id,
            created_at=now(), updated_at=now(), visibility=first.metadata.visibility or PRIVATE,
            min_disk_gb=first.metadata.min_disk_gb, min_ram_mb=first.metadata.min_ram_mb,
        )  # fmt: skip
        # Refused at once when the owner has no image left; the binding check is at activate().
        await self.quotas.charge(image.owner_project_id, {"images": 1})
        # SAVING only while this process keeps the lease alive: if it dies the record goes with it.
        lease = LeaseSession(self._store, self._lease_ttl_s)
        await lease.open()
        try:
            await self.put(image, lease.lease_id)
            try:
                await self.receive(image, sniffed(chunks_of(messages, "metadata"), image.disk_format), max_bytes)
                check_checksum(first.metadata.checksum, image.checksum)
                await self.activate(image)
            except BaseException:
                # Failed, refused or cancelled (the client went away): neither the record nor the
                # bytes stay; shielded so a second cancellation cannot leave it SAVING.
                await asyncio.shield(self.discard(image.id))
                raise
        finally:
            await asyncio.shield(lease.close())
        return image

    async def receive(
        self, image: images_pb2.Image, chunks: AsyncIterator[bytes], max_bytes: int | None = None
    ) -> None:
        """Writes the image's bytes (at least one, at most the size limit) and marks ``image`` ACTIVE
        with their size, sha256 and virtual size (minimums.DiskMeter); storing the record is the
        caller's. On any failure the part file is removed and ``image`` is left as it was."""
        limit = self._max_bytes if max_bytes is None else max_bytes
        writer = self._files.writer(image.id)
        meter = DiskMeter()
        try:
            async for chunk in chunks:
                if writer.size + len(chunk) > limit:
                    raise InvalidArgument([("chunk", f"images are limited to {limit} bytes "
                                                     f"({describe_size(limit)})")])  # fmt: skip
                meter.feed(chunk)
                await writer.write(chunk)
            if writer.size == 0:
                raise InvalidArgument([("chunk", "the image has no bytes")])
            checksum = await writer.commit()
        except BaseException:
            writer.abort()
            raise
        image.checksum, image.size_bytes, image.status = checksum, writer.size, Status.IMAGE_STATUS_ACTIVE
        image.virtual_size_bytes = meter.virtual_size
        image.updated_at.CopyFrom(now())

    async def activate(self, image: images_pb2.Image) -> None:
        """Stores what ``receive`` made of ``image`` (ACTIVE, sizes, checksum) on its record as the record
        is now (renamed or shared meanwhile), no longer bound to an upload's lease, and charges its
        owner's images and image_bytes quotas in the same transaction (QuotaExceeded: nothing
        written); ``image`` becomes the stored record. Aborted if the record is gone (deleted, or its
        upload's lease lost)."""
        key = keys.image(image.id)

        async def attempt() -> retry.Again | None:
            kv = await self._store.get(key)
            if kv is None:
                raise Aborted(f"image {image.id} was deleted while its bytes were written")
            old = images_pb2.Image.FromString(kv.value)
            current = images_pb2.Image()
            current.CopyFrom(old)
            current.status, current.size_bytes, current.checksum = image.status, image.size_bytes, image.checksum
            current.virtual_size_bytes = image.virtual_size_bytes
            current.updated_at.CopyFrom(image.updated_at)
            if not await counted.write_image(self.quotas, current, image.id, old, kv.mod_revision):
                return retry.AGAIN
            image.CopyFrom(current)
            return None

        await retry.until_done(attempt, what=f"image {image.id}")

    async def put(self, image: images_pb2.Image, lease: int = 0) -> None:
        """Writes a record that holds no quota yet (SAVING: charged when it becomes ACTIVE), with its
        index entries, on ``lease``."""
        if counted.image_charge(image):
            raise ValueError(f"image {image.id}: only a SAVING record is put directly")
        key = keys.image(image.id)

        async def attempt() -> retry.Again | None:
            kv = await self._store.get(key)
            old = images_pb2.Image.FromString(kv.value) if kv else None
            ops = [
                self._store.op_put(key, image.SerializeToString(), lease),
                *index.write_ops(self._store, old, image, lease),
            ]
            ok, _ = await self._store.txn([self._store.cmp_mod(key, kv.mod_revision if kv else 0)], ops)
            return None if ok else retry.AGAIN

        await retry.until_done(attempt, what=f"image {image.id}")

    async def find(self, image_id: str) -> tuple[images_pb2.Image, int] | None:
        """The image with this id (not a name) and its record's mod revision, or None; whoever asks."""
        kv = await self._store.get(keys.image(image_id))
        return (images_pb2.Image.FromString(kv.value), kv.mod_revision) if kv else None

    async def discard(self, image_id: str) -> None:
        """Removes the record, its members and the bytes, whoever owns them (a snapshot that failed),
        giving back what the image held of its owner's quota."""
        await counted.remove_image(self.quotas, image_id)
        self._files.remove(image_id)

    async def saving_snapshot_of(self, instance_id: str) -> images_pb2.Image | None:
        """The snapshot of this server still being saved, if there is one."""
        return await lookup.saving_snapshot(self._store, instance_id)

    def read_bytes(self, image_id: str) -> AsyncIterator[bytes]:
        """The bytes of an image, in 1 MiB chunks."""
        return self._files.read(image_id)

    # ---- what a caller may see ------------------------------------------------------------
    async def get(self, id_or_name: str, field: str = "id", viewer: Viewer | None = None) -> images_pb2.Image:
        """The image ``viewer`` (default: the caller) may see with this id, or else this name
        (resolved in tiers, see access.py); NOT_FOUND for one it may not see."""
        if not id_or_name:
            raise InvalidArgument([(field, "is required")])
        viewer = viewer or Viewer.current()
        kv = await self._store.get(keys.image(id_or_name))
        if kv is not None:
            image = images_pb2.Image.FromString(kv.value)
            if await self._can_read(image, viewer):
                return image
        return await lookup.by_name(self._store, id_or_name, viewer, field)

    async def _can_read(self, image: images_pb2.Image, viewer: Viewer) -> bool:
        if can_read(image, viewer, is_member=False):
            return True
        return visibility_of(image) == SHARED and await members.is_member(self._store, image.id,
                                                                                viewer.project_id)  # fmt: skip

    async def list(self, size: int, token: str) -> images_pb2.ListImagesResponse:
        """The images the caller may see, a page at a time in id order (through the indexes of its
        project's images, the PUBLIC ones and those shared with it; see lookup.py): at most
        ``size`` of them and about ``PAGE_BYTES``."""
        limit = page_size(size)
        after = paging.decode(token, keys.IMAGES).removeprefix(keys.IMAGES)
        visible = lookup.visible(self._store, Viewer.current(), after, batch=min(limit + 1, GET_BATCH))
        images, last = await fill_page_async(((keys.image(i.id), i) async for i in visible), limit)
        return images_pb2.ListImagesResponse(images=images, next_page_token=paging.next_token(last))

    async def download(self, id_or_name: str) -> AsyncIterator[bytes]:
        image = await self.get(id_or_name)
        if image.status != Status.IMAGE_STATUS_ACTIVE:
            raise FailedPrecondition(f"image {image.id} is not ACTIVE yet")
        async for chunk in self._files.read(image.id):
            yield chunk

    # ---- what the owner (or an admin) may change ------------------------------------------
    async def update(self, req: images_pb2.UpdateImageRequest) -> images_pb2.Image:
        v = Violations()
        v.required("id", req.id)
        if req.name:
            v.name("name", req.name)
        validate_minimums(v, "", req.min_disk_gb, req.min_ram_mb)
        v.raise_if_any()
        viewer = Viewer.current()
        image = await self.get(req.id, "id", viewer)
        check_owner(image, viewer, "change it")
        check_visibility(req.visibility, viewer, "visibility")
        key = keys.image(image.id)

        async def read() -> tuple[images_pb2.Image, KV]:
            kv = await self._store.get(key)
            if kv is None:
                raise NotFound("image", req.id, field="id")
            return images_pb2.Image.FromString(kv.value), kv

        def change(current: images_pb2.Image) -> None:
            current.name = req.name or current.name
            current.visibility = req.visibility or visibility_of(current)  # type: ignore[assignment]
            if req.HasField("min_disk_gb"):
                current.min_disk_gb = req.min_disk_gb
            if req.HasField("min_ram_mb"):
                current.min_ram_mb = req.min_ram_mb
            current.updated_at.CopyFrom(now())

        async def write(current: images_pb2.Image, kv: KV) -> bool:
            old = images_pb2.Image.FromString(kv.value)
            ops = [self._store.op_put(key, current.SerializeToString(), kv.lease),
                   *index.write_ops(self._store, old, current, kv.lease)]  # fmt: skip
            ok, _ = await self._store.txn([self._store.cmp_mod(key, kv.mod_revision)], ops)
            return ok

        return await retry.swap(read, change, write, what=f"image {image.id}")

    async def delete(self, id_or_name: str) -> None:
        viewer = Viewer.current()
        image = await self.get(id_or_name, "id", viewer)
        check_owner(image, viewer, "delete it")
        await self.discard(image.id)

    async def add_member(self, image_ref: str, project_id: str) -> images_pb2.ImageMember:
        members.validate_member(image_ref, project_id)
        viewer = Viewer.current()
        image = await self.get(image_ref, "image_id", viewer)
        return await members.add(self._store, image.id, project_id, viewer)

    async def remove_member(self, image_ref: str, project_id: str) -> None:
        members.validate_member(image_ref, project_id)
        viewer = Viewer.current()
        image = await self.get(image_ref, "image_id", viewer)
        await members.remove(self._store, image.id, project_id, viewer)

    async def list_members(self, image_ref: str) -> images_pb2.ListImageMembersResponse:
        viewer = Viewer.current()
        image = await self.get(image_ref, "image_id", viewer)
        check_owner(image, viewer, "see whom it is shared with")
        return images_pb2.ListImageMembersResponse(members=await members.members_of(self._store, image.id))

    # ---- the api process's own upkeep -----------------------------------------------------
    async def seed(self, seed_file: Path | None = None) -> None:
        """The PUBLIC image ``tiny`` (owned by no project), unless there is one; one seeded before
        images had a visibility becomes PUBLIC. Api replicas starting together make one: each
        looks and uploads while it holds the seed claim (see seeding)."""
        async with seed_claim(self._store, "image-tiny", self._lease_ttl_s):
            await self._seed_tiny(seed_file)

    async def _seed_tiny(self, seed_file: Path | None) -> None:
        seeded = await lookup.owned_named(self._store, "tiny", "")
        for image in seeded:
            if not image.visibility:
                await self.update(images_pb2.UpdateImageRequest(id=image.id, visibility=PUBLIC))
        if seeded:
            return
        meta, chunks, source = seed_source(seed_file)
        meta.container_format, meta.visibility = "bare", PUBLIC

        async def stream() -> AsyncIterator[images_pb2.UploadImageRequest]:
            yield images_pb2.UploadImageRequest(metadata=meta)
            async for chunk in chunks:
                yield images_pb2.UploadImageRequest(chunk=chunk)

        await self.upload(stream(), max_bytes=max(self._max_bytes, MAX_IMAGE_BYTES))
        log.info("seeded the image 'tiny' from %s", source)

    async def sweep(self, spread_s: float = 0.0) -> int:
        """Removes the bytes no image record names (left by an api that died mid-upload: its record
        went with its lease). It reads only the records of the files here, ``GET_BATCH`` at a time,
        the batches spread over ``spread_s`` seconds. Files are listed before their records are
        read, so an upload that starts meanwhile (record first, then its file) is never taken for one."""
        on_disk = sorted(self._files.ids())
        batches = [on_disk[n : n + GET_BATCH] for n in range(0, len(on_disk), GET_BATCH)]
        orphans = 0
        for n, batch in enumerate(batches):
            if n:
                await asyncio.sleep(spread_s / len(batches))
            named = {
                kv.key.removeprefix(keys.IMAGES) for kv in await get_many(self._store, [keys.image(i) for i in batch])
            }
            for image_id in set(batch) - named:
                self._files.remove(image_id)
                orphans += 1
        if orphans:
            log.info("removed the bytes of %d image(s) no record names", orphans)
        return orphans

    def start_sweeping(self, interval_s: float) -> None:
        """Sweeps now and then every ``interval_s`` seconds (each sweep's reads spread over it), until
        ``stop_sweeping``."""

        async def loop() -> None:
            clock = asyncio.get_running_loop().time
            while True:
                started = clock()
                try:
                    await self.sweep(spread_s=interval_s)
                except (*AMBIGUOUS, ConnectionError, OSError, grpc.aio.AioRpcError) as exc:
                    log.warning("image sweep failed (%s); trying again in %.0f s", exc, interval_s)
                await asyncio.sleep(max(0.0, interval_s - (clock() - started)))

        self._sweeper = spawn_supervised("image-sweeper", loop)

    async def stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

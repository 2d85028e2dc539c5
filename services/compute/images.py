"""Image bytes from and to the api's internal ImageStore, with the stack's service token.

Downloads are streamed to a file and verified against the sha256 and size the api states;
any api replica serves them. Transient failures (no api up, a replica restarting) are retried
for a while before they become an ImageError.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc

from services.compute.drivers.base import BadImage, ImageError, ImageInfo, ImageService
from services.core.backoff import backoff
from services.core.channels import ChannelPool, ServiceDirectory
from stratus.imagestore.v1 import imagestore_pb2, imagestore_pb2_grpc
from stratus.v1 import images_pb2

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
RETRY_FOR_S = 60.0
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
T = TypeVar("T")


def image_info(image: images_pb2.Image) -> ImageInfo:
    return ImageInfo(
        id=image.id, name=image.name, checksum=image.checksum, size_bytes=image.size_bytes,
        disk_format=image.disk_format, properties=dict(image.properties),
    )  # fmt: skip


class ApiImageService(ImageService):
    def __init__(self, directory: ServiceDirectory, channels: ChannelPool, token_file: Path) -> None:
        self._directory = directory
        self._channels = channels
        self._token_file = token_file

    async def start(self) -> None:
        await self._directory.start()

    async def stop(self) -> None:
        await self._directory.stop()
        await self._channels.close()

    def _stub(self) -> imagestore_pb2_grpc.ImageStoreStub:
        endpoint = self._directory.pick("api")
        if endpoint is None:
            raise ConnectionError("no api is running")
        return imagestore_pb2_grpc.ImageStoreStub(self._channels.get(endpoint))

    def _metadata(self) -> list[tuple[str, str]]:
        try:
            token = self._token_file.read_text().strip()
        except OSError as exc:
            raise ImageError(f"cannot read the service token {self._token_file}: {exc}") from exc
        return [("authorization", f"Bearer {token}")]

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        deadline, delays = asyncio.get_running_loop().time() + RETRY_FOR_S, backoff()
        while True:
            try:
                return await attempt()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in TRANSIENT:  # not found, not ACTIVE: no host will do better
                    raise BadImage(f"{what}: {exc.details()}") from exc
                error: Exception = exc
            except ConnectionError as exc:  # no api registered right now
                error = exc
            if asyncio.get_running_loop().time() > deadline:
                raise ImageError(f"{what}: the api is unreachable ({error})") from error
            log.warning("%s: %s; retrying", what, error)
            await asyncio.sleep(next(delays))

    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        return await self._retrying(f"download of image {image_id}", lambda: self._download(image_id, dest))

    async def _download(self, image_id: str, dest: Path) -> ImageInfo:
        stream = self._stub().ReadImage(imagestore_pb2.ReadImageRequest(image_id=image_id), metadata=self._metadata())
        first = await anext(aiter(stream), None)
        if first is None or first.WhichOneof("data") != "image":
            raise ImageError(f"image {image_id}: the api sent no metadata")
        info = image_info(first.image)
        sha, size = hashlib.sha256(), 0
        with dest.open("wb") as fh:
            async for msg in stream:
                sha.update(msg.chunk)
                size += len(msg.chunk)
                await asyncio.to_thread(fh.write, msg.chunk)
        if size != info.size_bytes or sha.hexdigest() != info.checksum:
            await asyncio.to_thread(dest.unlink, True)
            raise BadImage(
                f"image {image_id} ({info.name}): received {size} bytes with sha256 {sha.hexdigest()}, "
                f"expected {info.size_bytes} bytes with sha256 {info.checksum}"
            )
        return info

    async def upload(self, image_id: str, src: Path) -> None:
        async def messages() -> AsyncIterator[imagestore_pb2.WriteImageRequest]:
            yield imagestore_pb2.WriteImageRequest(image_id=image_id)
            with src.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    yield imagestore_pb2.WriteImageRequest(chunk=chunk)

        async def attempt() -> None:
            await self._stub().WriteImage(messages(), metadata=self._metadata())

        await self._retrying(f"upload of image {image_id}", attempt)

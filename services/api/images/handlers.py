"""Thin gRPC handlers for stratus.v1.Images and the internal stratus.imagestore.v1.ImageStore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.api.handling import Ctx, bounded
from services.api.images.manager import ImagesManager
from services.api.images.store import ImageStoreManager
from stratus.imagestore.v1 import imagestore_pb2, imagestore_pb2_grpc
from stratus.v1 import images_pb2, images_pb2_grpc


@bounded
class ImagesServicer(images_pb2_grpc.ImagesServicer):
    def __init__(self, images: ImagesManager) -> None:
        self.m = images

    async def UploadImage(self, request_iterator: AsyncIterator[Any], context: Ctx) -> images_pb2.Image:
        return await self.m.upload(request_iterator)

    async def GetImage(self, request: images_pb2.GetImageRequest, context: Ctx) -> images_pb2.Image:
        return await self.m.get(request.id)

    async def ListImages(self, request: images_pb2.ListImagesRequest, context: Ctx) -> Any:
        return await self.m.list(request.page_size, request.page_token)

    async def DeleteImage(self, request: images_pb2.DeleteImageRequest, context: Ctx) -> Any:
        await self.m.delete(request.id)
        return images_pb2.DeleteImageResponse()

    async def DownloadImage(self, request: images_pb2.DownloadImageRequest, context: Ctx) -> AsyncIterator[Any]:
        async for chunk in self.m.download(request.id):
            yield images_pb2.DownloadImageResponse(chunk=chunk)

    async def UpdateImage(self, request: images_pb2.UpdateImageRequest, context: Ctx) -> images_pb2.Image:
        return await self.m.update(request)

    async def AddImageMember(self, request: images_pb2.AddImageMemberRequest, context: Ctx) -> Any:
        return await self.m.add_member(request.image_id, request.project_id)

    async def RemoveImageMember(self, request: images_pb2.RemoveImageMemberRequest, context: Ctx) -> Any:
        await self.m.remove_member(request.image_id, request.project_id)
        return images_pb2.RemoveImageMemberResponse()

    async def ListImageMembers(self, request: images_pb2.ListImageMembersRequest, context: Ctx) -> Any:
        return await self.m.list_members(request.image_id)


class ImageStoreServicer(imagestore_pb2_grpc.ImageStoreServicer):
    """Internal: image bytes for the computes (the service token only; see auth.py)."""

    def __init__(self, store: ImageStoreManager) -> None:
        self.m = store

    async def ReadImage(self, request: imagestore_pb2.ReadImageRequest, context: Ctx) -> AsyncIterator[Any]:
        async for message in self.m.read(request.image_id):
            yield message

    async def WriteImage(self, request_iterator: AsyncIterator[Any], context: Ctx) -> Any:
        return imagestore_pb2.WriteImageResponse(image=await self.m.write(request_iterator))

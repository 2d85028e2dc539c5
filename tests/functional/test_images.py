"""Images: upload by client stream with a checksum, download back, delete; bad uploads leave nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest

from stratus.v1 import images_pb2
from tests.support.stack import Stack


def upload(stack: Stack, messages: list[images_pb2.UploadImageRequest]) -> images_pb2.Image:
    def stream() -> Iterator[images_pb2.UploadImageRequest]:
        yield from messages

    image: images_pb2.Image = stack.images.UploadImage(stream(), metadata=stack.md("demo"))
    return image


def test_upload_download_delete(stack: Stack) -> None:
    data = bytes(range(256)) * 5000
    meta = images_pb2.Image(name="roundtrip", disk_format="raw", properties={"os": "test"})
    chunks = [images_pb2.UploadImageRequest(chunk=data[i : i + 300_000]) for i in range(0, len(data), 300_000)]
    image = upload(stack, [images_pb2.UploadImageRequest(metadata=meta), *chunks])
    assert image.status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE
    assert image.size_bytes == len(data) and image.checksum == hashlib.sha256(data).hexdigest()
    back = b"".join(
        r.chunk for r in stack.images.DownloadImage(images_pb2.DownloadImageRequest(id=image.id), metadata=stack.md())
    )
    assert back == data
    stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=stack.md("demo"))
    with pytest.raises(grpc.RpcError) as info:
        stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=stack.md())
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_upload_without_metadata_or_with_bad_format_is_refused_and_leaves_nothing(stack: Stack) -> None:
    before = len(stack.images.ListImages(images_pb2.ListImagesRequest(), metadata=stack.md()).images)
    with pytest.raises(grpc.RpcError) as info:
        upload(stack, [images_pb2.UploadImageRequest(chunk=b"abc")])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        upload(stack, [images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="x", disk_format="vhd"))])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    meta = images_pb2.Image(name="twice", disk_format="raw")
    with pytest.raises(grpc.RpcError) as info:
        upload(stack, [images_pb2.UploadImageRequest(metadata=meta), images_pb2.UploadImageRequest(chunk=b"a"),
                       images_pb2.UploadImageRequest(metadata=meta)])  # fmt: skip
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = stack.images.ListImages(images_pb2.ListImagesRequest(), metadata=stack.md()).images
    assert len(after) == before
    leftovers = [p for p in (stack.state_dir / "images").iterdir() if p.suffix == ".part"]
    assert leftovers == []

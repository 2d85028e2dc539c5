"""What the images tests share: the caller they act as, and an upload's stream of messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.core.context import RequestContext
from stratus.v1 import images_pb2

ALICE = RequestContext("alice", "alice", frozenset({"member"}))


async def stream(meta: images_pb2.Image, *chunks: bytes) -> AsyncIterator[images_pb2.UploadImageRequest]:
    yield images_pb2.UploadImageRequest(metadata=meta)
    for chunk in chunks:
        yield images_pb2.UploadImageRequest(chunk=chunk)

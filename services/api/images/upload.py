"""What an upload must be: its metadata valid, its bytes of the format it declares (the qcow2
magic), their sha256 the checksum the client sent, and the stream a metadata message then chunks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from services.api.images.minimums import QCOW2_MAGIC, validate_minimums
from services.api.validation import Violations
from services.core.errors import InvalidArgument
from services.core.message_limits import IMAGE_CHUNK_MAX_BYTES
from stratus.v1 import images_pb2

DISK_FORMATS = ("raw", "qcow2")
CONTAINER_FORMATS = ("bare",)
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


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
    validate_minimums(v, "metadata.", meta.min_disk_gb, meta.min_ram_mb)
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


def describe_size(n: int) -> str:
    """``68719476736`` -> ``64 GiB``; ``1536`` -> ``1.5 KiB``."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    size, i = float(n), 0
    while size >= 1024 and i < len(units) - 1:
        size, i = size / 1024, i + 1
    return f"{size:.4g} {units[i]}"


def check_checksum(expected: str, received: str) -> None:
    if expected and expected.lower() != received:
        raise InvalidArgument([("metadata.checksum", f"expected {expected.lower()}, received {received}")])


async def chunks_of(messages: AsyncIterator[Any], first: str) -> AsyncIterator[bytes]:
    """The chunks of the messages after the first; another ``first`` among them is refused, and so
    is a chunk larger than ``IMAGE_CHUNK_MAX_BYTES``."""
    async for msg in messages:
        if msg.WhichOneof("data") != "chunk":
            raise InvalidArgument([("chunk", f"only the first message may carry the {first}")])
        if len(msg.chunk) > IMAGE_CHUNK_MAX_BYTES:
            raise InvalidArgument([("chunk", f"must be at most {IMAGE_CHUNK_MAX_BYTES} bytes, got {len(msg.chunk)}")])
        yield msg.chunk

"""Streaming an image file to ``Images.UploadImage``: the metadata (with the file's sha256, which the
api checks the bytes against) first, then 1 MiB chunks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from stratus.v1 import images_pb2

CHUNK_BYTES = 1024 * 1024
QCOW2_MAGIC = b"QFI\xfb"


def guess_disk_format(path: Path) -> str:
    with path.open("rb") as fh:
        return "qcow2" if fh.read(4) == QCOW2_MAGIC else "raw"


def file_sha256(path: Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def upload_requests(
    metadata: images_pb2.Image, fh: BinaryIO, advance: Callable[[int], None], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[images_pb2.UploadImageRequest]:
    yield images_pb2.UploadImageRequest(metadata=metadata)
    while chunk := fh.read(chunk_bytes):
        advance(len(chunk))
        yield images_pb2.UploadImageRequest(chunk=chunk)

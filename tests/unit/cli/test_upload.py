"""Image upload: the metadata message first, then the file in chunks."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from services.cli.upload import file_sha256, guess_disk_format, upload_requests
from stratus.v1 import images_pb2


def test_metadata_goes_first_then_every_byte_in_chunks() -> None:
    data = bytes(range(256)) * 10
    seen: list[int] = []
    meta = images_pb2.Image(name="img", disk_format="raw")
    requests = list(upload_requests(meta, io.BytesIO(data), seen.append, chunk_bytes=1000))
    assert requests[0].WhichOneof("data") == "metadata"
    assert requests[0].metadata.name == "img"
    chunks = [r.chunk for r in requests[1:]]
    assert [len(c) for c in chunks] == [1000, 1000, 560]
    assert b"".join(chunks) == data
    assert seen == [1000, 1000, 560]


def test_an_empty_file_is_just_the_metadata() -> None:
    requests = list(upload_requests(images_pb2.Image(name="e"), io.BytesIO(b""), lambda n: None))
    assert len(requests) == 1


def test_the_disk_format_is_guessed_from_the_qcow2_magic(tmp_path: Path) -> None:
    qcow2, raw = tmp_path / "a.qcow2", tmp_path / "a.img"
    qcow2.write_bytes(b"QFI\xfb\x00\x00\x00\x03")
    raw.write_bytes(b"\x00" * 512)
    assert guess_disk_format(qcow2) == "qcow2"
    assert guess_disk_format(raw) == "raw"


def test_the_checksum_sent_is_the_files_sha256(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(b"x" * 3000)
    assert file_sha256(path, chunk_bytes=1000) == hashlib.sha256(b"x" * 3000).hexdigest()

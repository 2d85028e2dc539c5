"""Uploads on a stack of their own (a small size limit, a short lease, a quick sweep): an image over
the limit is refused with the limit, and an api killed mid-upload leaves neither a SAVING record
(it went with the upload's lease) nor bytes (swept)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stratus.v1 import images_pb2
from tests.functional.test_errors import fails
from tests.support.stack import Stack, start_stack

LIMIT = 1024 * 1024
Status = images_pb2.ImageStatus


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"STRATUS_MAX_IMAGE_BYTES": str(LIMIT), "STRATUS_IMAGE_SWEEP_INTERVAL_S": "0.5"}
    s = start_stack(Path(tmp_path_factory.mktemp("uploads")), "--driver", "fake", "--lease-ttl", "2", env=env)
    yield s
    assert s.stop() == 0, s.log_tail()


def named(stack: Stack, name: str) -> list[images_pb2.Image]:
    images = stack.images.ListImages(images_pb2.ListImagesRequest(page_size=1000), metadata=stack.md()).images
    return [i for i in images if i.name == name]


def files_of(stack: Stack, image_id: str) -> list[Path]:
    return [p for p in (stack.state_dir / "images").iterdir() if p.name.startswith(image_id)]


def wait_until(check: object, what: str, stack: Stack, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}\n{stack.log_tail()}"
        time.sleep(0.1)


def test_an_image_over_the_size_limit_is_refused_with_the_limit(small: Stack) -> None:
    def stream() -> Iterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="too-big", disk_format="raw"))
        for _ in range(3):
            yield images_pb2.UploadImageRequest(chunk=b"\0" * (LIMIT // 2))

    err = fails(lambda: small.images.UploadImage(stream(), metadata=small.md("demo")), grpc.StatusCode.INVALID_ARGUMENT)
    assert str(LIMIT) in (err.details() or "") and "1 MiB" in (err.details() or "")
    assert named(small, "too-big") == []
    assert [p for p in (small.state_dir / "images").iterdir() if p.suffix == ".part"] == []
    meta = images_pb2.Image(name="just-fits", disk_format="raw")
    messages = [images_pb2.UploadImageRequest(metadata=meta), images_pb2.UploadImageRequest(chunk=b"\0" * LIMIT)]
    image = small.images.UploadImage(iter(messages), metadata=small.md("demo"))
    assert (image.status, image.size_bytes) == (Status.IMAGE_STATUS_ACTIVE, LIMIT)


def test_an_api_killed_mid_upload_leaves_no_saving_image_and_no_bytes(small: Stack) -> None:
    release = threading.Event()

    def stream() -> Iterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=images_pb2.Image(name="orphan", disk_format="raw"))
        yield images_pb2.UploadImageRequest(chunk=b"\0" * 100_000)
        release.wait(60)

    future = small.images.UploadImage.future(stream(), metadata=small.md("demo"))
    wait_until(lambda: [i.status for i in named(small, "orphan")] == [Status.IMAGE_STATUS_SAVING], "no SAVING", small)
    (image,) = named(small, "orphan")
    wait_until(lambda: files_of(small, image.id), "no part file", small)
    api = next(s for s in small.reload()["services"] if s["binary"] == "api")
    os.kill(api["pid"], signal.SIGKILL)
    release.set()
    with pytest.raises(grpc.RpcError):
        future.result(timeout=60)

    def gone() -> bool:
        try:
            return named(small, "orphan") == []
        except grpc.RpcError as exc:  # the api is coming back
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            return False

    wait_until(gone, "the SAVING record outlived its upload's lease", small)
    wait_until(lambda: files_of(small, image.id) == [], "the orphan bytes were not swept", small)

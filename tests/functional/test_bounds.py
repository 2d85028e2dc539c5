"""Every input bounded, tried as a hostile user would: long, unreadable or undefined values are
INVALID_ARGUMENT (never INTERNAL), errors echo little, request ids are not reusable with another
body, and image uploads are checked and never left SAVING."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from stratus.v1 import images_pb2, servers_pb2, services_pb2
from tests.functional.test_errors import fails, field_violations
from tests.support.stack import Stack

Status = images_pb2.ImageStatus
QCOW2_HEAD = b"QFI\xfb\x00\x00\x00\x03" + b"\0" * 504


def upload(stack: Stack, meta: images_pb2.Image, *chunks: bytes) -> images_pb2.Image:
    def stream() -> Iterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=meta)
        for chunk in chunks:
            yield images_pb2.UploadImageRequest(chunk=chunk)

    image: images_pb2.Image = stack.images.UploadImage(stream(), metadata=stack.md("demo"))
    return image


def named(stack: Stack, name: str) -> list[images_pb2.Image]:
    images = stack.images.ListImages(images_pb2.ListImagesRequest(page_size=1000), metadata=stack.md()).images
    return [i for i in images if i.name == name]


def wait_no_image(stack: Stack, name: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while named(stack, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert named(stack, name) == []
    leftovers = [p for p in (stack.state_dir / "images").iterdir() if p.suffix == ".part"]
    assert leftovers == []


def compute_host(stack: Stack) -> str:
    reply = stack.services.ListServices(services_pb2.ListServicesRequest(binary="compute"), metadata=stack.md())
    return str(reply.services[0].host)


def test_update_service_with_a_long_host_is_invalid_not_internal(stack: Stack) -> None:
    for host in ("h" * 10_000, "h" * 255, "a\u202eb"):
        req = services_pb2.UpdateServiceRequest(binary="compute", host=host)
        with pytest.raises(grpc.RpcError) as info:
            stack.services.UpdateService(req, metadata=stack.md())
        assert info.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        assert len(info.value.details() or "") < 512
    req = services_pb2.UpdateServiceRequest(binary="compute", host="h" * 10_000)
    err = fails(lambda: stack.services.UpdateService(req, metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)
    assert "host" in field_violations(err)


def test_a_huge_id_is_refused_with_a_short_message(stack: Stack) -> None:
    huge = "x" * 16 * 1024
    calls = [
        lambda: stack.servers.GetServer(servers_pb2.GetServerRequest(id=huge), metadata=stack.md()),
        lambda: stack.images.GetImage(images_pb2.GetImageRequest(id=huge), metadata=stack.md()),
        lambda: stack.servers.ResizeServer(
            servers_pb2.ResizeServerRequest(id="abc", flavor_id=huge), metadata=stack.md()
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        assert len(info.value.details() or "") < 512


def test_a_long_unknown_name_is_echoed_shortened(stack: Stack) -> None:
    name = "n" * 200
    req = images_pb2.GetImageRequest(id=name)
    err = fails(lambda: stack.images.GetImage(req, metadata=stack.md()), grpc.StatusCode.NOT_FOUND)
    assert name not in (err.details() or "") and "\u2026" in (err.details() or "")


def test_a_megabyte_disabled_reason_is_refused(stack: Stack) -> None:
    req = services_pb2.UpdateServiceRequest(
        binary="compute", host=compute_host(stack), status=services_pb2.ServiceStatus.SERVICE_STATUS_DISABLED,
        disabled_reason="r" * 1024 * 1024,
    )  # fmt: skip
    err = fails(lambda: stack.services.UpdateService(req, metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)
    assert "disabled_reason" in field_violations(err)
    services = stack.services.ListServices(services_pb2.ListServicesRequest(), metadata=stack.md()).services
    assert all(s.status == services_pb2.ServiceStatus.SERVICE_STATUS_ENABLED for s in services)


@pytest.mark.parametrize(
    ("server", "field"),
    [
        (servers_pb2.Server(metadata={"k": "a\u202eb"}), "server.metadata['k']"),
        (servers_pb2.Server(metadata={"k\x07": "v"}), "server.metadata['k\\x07']"),
        (servers_pb2.Server(scheduler_hints={"h": "line\nbreak"}), "server.scheduler_hints['h']"),
        (servers_pb2.Server(availability_zone="nova\u202e"), "server.availability_zone"),
        (servers_pb2.Server(name="evil\u202egnp.exe"), "server.name"),
    ],
)
def test_unreadable_characters_are_refused(stack: Stack, server: servers_pb2.Server, field: str) -> None:
    server.MergeFrom(servers_pb2.Server(name=server.name or "ok", flavor_id="m1.tiny", image_id="tiny"))
    req = servers_pb2.CreateServerRequest(server=server)
    err = fails(lambda: stack.servers.CreateServer(req, metadata=stack.md("demo")), grpc.StatusCode.INVALID_ARGUMENT)
    assert field in field_violations(err), field_violations(err)


def test_reboot_with_an_unknown_type_is_refused_and_nothing_reboots(stack: Stack) -> None:
    req = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name="bounds-reboot", flavor_id="m1.tiny",
                                                                     image_id="tiny"))  # fmt: skip
    server = stack.servers.CreateServer(req, metadata=stack.md("demo"))
    try:
        stack.wait_for_server(server.id, {"ACTIVE"}, who="demo")
        reboot = servers_pb2.RebootServerRequest(id=server.id, type=99)  # type: ignore[arg-type]
        err = fails(lambda: stack.servers.RebootServer(reboot, metadata=stack.md("demo")),
                    grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
        assert "type" in field_violations(err)
        after = stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=stack.md("demo"))
        assert after.status == servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE
        assert after.task_state == servers_pb2.TaskState.TASK_STATE_UNSPECIFIED
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md("demo"))
        stack.wait_gone(server.id)


def test_a_reused_request_id_with_another_body_is_already_exists(stack: Stack) -> None:
    request_id = f"bounds-{uuid.uuid4().hex}"

    def create(name: str) -> servers_pb2.Server:
        server = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny", metadata={"a": "1", "b": "2"})
        req = servers_pb2.CreateServerRequest(server=server, request_id=request_id)
        reply: servers_pb2.Server = stack.servers.CreateServer(req, metadata=stack.md("demo"))
        return reply

    first = create("bounds-rid")
    try:
        assert create("bounds-rid").id == first.id  # the same body: the same server
        err = fails(lambda: create("bounds-rid-other"), grpc.StatusCode.ALREADY_EXISTS)
        assert request_id in (err.details() or "")
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=first.id), metadata=stack.md("demo"))
        stack.wait_gone(first.id)


def test_an_upload_with_the_wrong_checksum_is_refused_with_both_values(stack: Stack) -> None:
    data = b"raw bytes " * 1000
    expected = hashlib.sha256(b"something else").hexdigest()
    meta = images_pb2.Image(name="bounds-checksum", disk_format="raw", checksum=expected)
    err = fails(lambda: upload(stack, meta, data), grpc.StatusCode.INVALID_ARGUMENT)
    assert expected in (err.details() or "") and hashlib.sha256(data).hexdigest() in (err.details() or "")
    wait_no_image(stack, "bounds-checksum")
    meta.checksum = hashlib.sha256(data).hexdigest()
    image = upload(stack, meta, data[:5000], data[5000:])
    assert image.status == Status.IMAGE_STATUS_ACTIVE and image.checksum == meta.checksum
    stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=stack.md("demo"))


def test_the_bytes_must_match_the_disk_format(stack: Stack) -> None:
    cases = [("raw", b"QFI"), ("raw", b"\xfb" + b"\0" * 100)]  # the magic split across chunks
    err = fails(lambda: upload(stack, images_pb2.Image(name="bounds-liar", disk_format="qcow2"), b"\0" * 4096),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "metadata.disk_format" in field_violations(err)
    err = fails(lambda: upload(stack, images_pb2.Image(name="bounds-liar", disk_format=cases[0][0]),
                               *(chunk for _, chunk in cases)), grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "metadata.disk_format" in field_violations(err)
    err = fails(lambda: upload(stack, images_pb2.Image(name="bounds-liar", disk_format="iso"), b"x"),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "metadata.disk_format" in field_violations(err)
    wait_no_image(stack, "bounds-liar")
    image = upload(stack, images_pb2.Image(name="bounds-qcow2", disk_format="qcow2"), QCOW2_HEAD[:2], QCOW2_HEAD[2:])
    assert image.status == Status.IMAGE_STATUS_ACTIVE
    stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=stack.md("demo"))


def test_an_over_long_first_chunk_leaves_no_image_saving(stack: Stack) -> None:
    meta = images_pb2.Image(name="bounds-huge-chunk", disk_format="raw")
    err = fails(lambda: upload(stack, meta, b"\0" * (5 * 1024 * 1024)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "chunk" in field_violations(err)
    wait_no_image(stack, "bounds-huge-chunk")
    images = stack.images.ListImages(images_pb2.ListImagesRequest(page_size=1000), metadata=stack.md()).images
    assert not [i for i in images if i.status == Status.IMAGE_STATUS_SAVING and i.name.startswith("bounds-")]


def test_an_upload_the_client_cancels_leaves_no_image(stack: Stack) -> None:
    meta = images_pb2.Image(name="bounds-cancelled", disk_format="raw")
    release = threading.Event()

    def stream() -> Iterator[images_pb2.UploadImageRequest]:
        yield images_pb2.UploadImageRequest(metadata=meta)
        yield images_pb2.UploadImageRequest(chunk=b"\0" * 100_000)
        release.wait(30)

    future = stack.images.UploadImage.future(stream(), metadata=stack.md("demo"))
    deadline = time.monotonic() + 10
    while not named(stack, "bounds-cancelled") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [i.status for i in named(stack, "bounds-cancelled")] == [Status.IMAGE_STATUS_SAVING]
    future.cancel()
    release.set()
    wait_no_image(stack, "bounds-cancelled")

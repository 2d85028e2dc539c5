"""Images know their minimum, through the public API on the fake driver: a snapshot of a server
resized to m1.small needs m1.small's disk, so a create with m1.tiny is refused at once with
INVALID_ARGUMENT naming the flavor and both sizes (as Nova's FlavorDiskSmallerThanMinDisk), and
one with m1.small boots; a resize below an image's minimum is refused as well."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from stratus.v1 import flavors_pb2, images_pb2, servers_pb2
from tests.functional.test_cli_images import stratus
from tests.functional.test_errors import error_reason, fails, field_violations
from tests.support.stack import Stack

WHO = "demo"
ACTIVE = images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE


def create(stack: Stack, name: str, flavor: str, image: str) -> servers_pb2.Server:
    spec = servers_pb2.Server(name=name, flavor_id=flavor, image_id=image)
    server: servers_pb2.Server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec),
                                                            metadata=stack.md(WHO))  # fmt: skip
    return server


def call(stack: Stack, method: str, server_id: str, **fields: object) -> Any:
    request = getattr(servers_pb2, f"{method}Request")(id=server_id, **fields)
    return getattr(stack.servers, method)(request, metadata=stack.md(WHO))


def saved(stack: Stack, image_id: str) -> images_pb2.Image:
    deadline = time.monotonic() + 60
    while True:
        image: images_pb2.Image = stack.images.GetImage(images_pb2.GetImageRequest(id=image_id),
                                                        metadata=stack.md(WHO))  # fmt: skip
        if image.status == ACTIVE:
            return image
        assert time.monotonic() < deadline, f"image still {image.status}:\n{stack.log_tail()}"
        time.sleep(0.1)


def delete(stack: Stack, *server_ids: str) -> None:
    for server_id in server_ids:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md(WHO))
    for server_id in server_ids:
        stack.wait_gone(server_id)


def test_a_snapshot_of_a_resized_server_refuses_the_smaller_flavor(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:6]
    first = create(stack, f"grown-{suffix}", "m1.tiny", "tiny")
    booted: list[str] = [first.id]
    image_id = ""
    try:
        stack.wait_for_server(first.id, {"ACTIVE"}, who=WHO)
        call(stack, "ResizeServer", first.id, flavor_id="m1.small")
        stack.wait_for_server(first.id, {"VERIFY_RESIZE"}, who=WHO)
        call(stack, "ConfirmServerResize", first.id)
        stack.wait_for_server(first.id, {"ACTIVE"}, who=WHO)
        snap_name = f"snap-{suffix}"
        image_id = call(stack, "SnapshotServer", first.id, image_name=snap_name).id
        image = saved(stack, image_id)
        assert (image.min_disk_gb, image.min_ram_mb) == (20, 0)  # m1.small's disk; tiny has no min_ram
        assert image.virtual_size_bytes > 0
        stack.wait_for_server(first.id, {"ACTIVE"}, who=WHO)

        err = fails(lambda: create(stack, f"small-{suffix}", "m1.tiny", snap_name), grpc.StatusCode.INVALID_ARGUMENT)
        why = field_violations(err)["server.flavor_id"]
        assert f"flavor m1.tiny has 1 GB of disk; image {snap_name} needs at least 20 GB" in why, why
        assert error_reason(err) == "FLAVOR_TOO_SMALL"

        second = create(stack, f"right-{suffix}", "m1.small", snap_name)
        booted.append(second.id)
        assert not stack.wait_for_server(second.id, {"ACTIVE"}, who=WHO).HasField("fault")

        # An owner raises the minimum: a resize to a flavor between is refused too, and nothing changes.
        stack.images.UpdateImage(images_pb2.UpdateImageRequest(id=image_id, min_disk_gb=40), metadata=stack.md(WHO))
        spec = flavors_pb2.Flavor(name=f"mid-{suffix}", vcpus=1, ram_mb=2048, disk_gb=30)
        mid = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=spec), metadata=stack.md())
        err = fails(
            lambda: call(stack, "ResizeServer", second.id, flavor_id=mid.name), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert "needs at least 40 GB" in field_violations(err)["flavor_id"]
        after = stack.servers.GetServer(servers_pb2.GetServerRequest(id=second.id), metadata=stack.md(WHO))
        assert (after.status, after.flavor_id) == (servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE, second.flavor_id)
        stack.flavors.DeleteFlavor(flavors_pb2.DeleteFlavorRequest(id=mid.id), metadata=stack.md())
    finally:
        delete(stack, *booted)
        if image_id:
            stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image_id), metadata=stack.md(WHO))


def test_minimums_are_bounded_and_the_owners(stack: Stack) -> None:
    tiny = next(i for i in stack.images.ListImages(images_pb2.ListImagesRequest(), metadata=stack.md(WHO)).images
                if i.name == "tiny")  # fmt: skip
    assert tiny.virtual_size_bytes > 0  # measured when the stack seeded it
    err = fails(lambda: stack.images.UpdateImage(images_pb2.UpdateImageRequest(id=tiny.id, min_ram_mb=-1),
                                                 metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "min_ram_mb" in field_violations(err)
    fails(lambda: stack.images.UpdateImage(images_pb2.UpdateImageRequest(id=tiny.id, min_disk_gb=5),
                                           metadata=stack.md(WHO)), grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip


def test_the_cli_sets_and_shows_minimums(stack: Stack, tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    token = stack.info["demo_token"]
    made = stratus(stack, token, "image", "create", "cli-min", "--file", str(disk), "--min-disk", "2",
                   "--min-ram", "64", "-f", "json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    image = json.loads(made.stdout)
    try:
        assert (image["min_disk_gb"], image["min_ram_mb"], image["virtual_size_bytes"]) == ("2", "64", "4096")
        shown = stratus(stack, token, "image", "show", image["id"])
        assert "min_disk_gb" in shown.stdout and "virtual_size_bytes" in shown.stdout, shown.stderr
        changed = stratus(stack, token, "image", "set", image["id"], "--min-ram", "0", "-f", "json")
        assert changed.returncode == 0, changed.stderr
        assert (json.loads(changed.stdout)["min_disk_gb"], json.loads(changed.stdout)["min_ram_mb"]) == ("2", "0")
        listed = stratus(stack, token, "image", "list")
        assert "MIN_DISK_GB" in listed.stdout and "MIN_RAM_MB" in listed.stdout, listed.stdout
        bad = stratus(stack, token, "image", "set", image["id"], "--min-disk", "-1")
        assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "min_disk_gb" in bad.stderr, bad.stderr
    finally:
        stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image["id"]), metadata=stack.md(WHO))

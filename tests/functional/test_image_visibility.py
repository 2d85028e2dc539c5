"""Images as Glance does them, seen by three member projects (alpha, beta, gamma) and an admin:
PRIVATE images stay in their project, SHARED ones reach their members only, PUBLIC ones (made by
an admin) everyone; names resolve in the caller's project, then shared, then public."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from services.core.tokens import add_token
from stratus.v1 import images_pb2, placement_pb2, servers_pb2
from tests.functional.test_errors import fails
from tests.support.stack import Stack

V = images_pb2.ImageVisibility
Md = list[tuple[str, str]]
PROJECTS = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def md(stack: Stack) -> dict[str, Md]:
    """Call metadata for a member of each project (tokens added to the stack's token file)."""
    out = {"admin": stack.md()}
    for project in PROJECTS:
        token = add_token(stack.state_dir / "tokens.json", f"vis-{project}", project, f"{project}-user", ["member"])
        out[project] = [("authorization", f"Bearer {token}")]
    return out


@pytest.fixture
def made(stack: Stack, md: dict[str, Md]) -> Iterator[list[str]]:
    """Ids of the images a test made, deleted after it (by an admin)."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        try:
            stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image_id), metadata=md["admin"])
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND


def upload(stack: Stack, md: Md, name: str, visibility: int = 0, data: bytes = b"\0" * 1024) -> images_pb2.Image:
    meta = images_pb2.Image(name=name, disk_format="raw", visibility=visibility)  # type: ignore[arg-type]
    messages = [images_pb2.UploadImageRequest(metadata=meta), images_pb2.UploadImageRequest(chunk=data)]
    image: images_pb2.Image = stack.images.UploadImage(iter(messages), metadata=md)
    return image


def get(stack: Stack, md: Md, ref: str) -> images_pb2.Image:
    image: images_pb2.Image = stack.images.GetImage(images_pb2.GetImageRequest(id=ref), metadata=md)
    return image


def listed(stack: Stack, md: Md) -> set[str]:
    reply = stack.images.ListImages(images_pb2.ListImagesRequest(page_size=1000), metadata=md)
    return {i.id for i in reply.images}


def download(stack: Stack, md: Md, ref: str) -> bytes:
    request = images_pb2.DownloadImageRequest(id=ref)
    return b"".join(r.chunk for r in stack.images.DownloadImage(request, metadata=md))


def boot(stack: Stack, md: Md, image: str) -> servers_pb2.Server:
    server = servers_pb2.Server(name="vis", flavor_id="m1.tiny", image_id=image)
    created: servers_pb2.Server = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=server),
                                                             metadata=md)  # fmt: skip
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=created.id), metadata=stack.md())
    stack.wait_gone(created.id)
    return created


def add_member(stack: Stack, md: Md, image_id: str, project: str) -> images_pb2.ImageMember:
    request = images_pb2.AddImageMemberRequest(image_id=image_id, project_id=project)
    member: images_pb2.ImageMember = stack.images.AddImageMember(request, metadata=md)
    return member


def seen_as_missing(stack: Stack, md: Md, image: images_pb2.Image) -> None:
    """Every read, boot and change of ``image`` by ``md`` is NOT_FOUND, as if it did not exist."""
    assert image.id not in listed(stack, md)
    for ref in (image.id, image.name):
        fails(lambda ref=ref: get(stack, md, ref), grpc.StatusCode.NOT_FOUND)
        fails(lambda ref=ref: download(stack, md, ref), grpc.StatusCode.NOT_FOUND)
        fails(lambda ref=ref: boot(stack, md, ref), grpc.StatusCode.NOT_FOUND)
    fails(lambda: stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=md),
          grpc.StatusCode.NOT_FOUND)  # fmt: skip
    update = images_pb2.UpdateImageRequest(id=image.id, name="stolen")
    fails(lambda: stack.images.UpdateImage(update, metadata=md), grpc.StatusCode.NOT_FOUND)
    fails(lambda: add_member(stack, md, image.id, "gamma"), grpc.StatusCode.NOT_FOUND)


def test_a_private_image_is_seen_only_by_its_project_and_admins(
    stack: Stack, md: dict[str, Md], made: list[str]
) -> None:
    image = upload(stack, md["alpha"], "vis-private", data=b"private " * 100)
    made.append(image.id)
    assert image.visibility == V.IMAGE_VISIBILITY_PRIVATE and image.owner_project_id == "alpha"
    seen_as_missing(stack, md["beta"], image)
    assert get(stack, md["alpha"], "vis-private").id == image.id
    assert download(stack, md["alpha"], image.id) == b"private " * 100
    assert boot(stack, md["alpha"], "vis-private").image_id == image.id
    assert image.id in listed(stack, md["alpha"]) and image.id in listed(stack, md["admin"])
    assert download(stack, md["admin"], image.id) == b"private " * 100
    # an admin explaining a placement for beta sees what beta sees
    explain = placement_pb2.ExplainPlacementRequest(
        server=servers_pb2.Server(flavor_id="m1.tiny", image_id=image.id), project_id="beta"
    )
    fails(lambda: stack.placement.ExplainPlacement(explain, metadata=md["admin"]), grpc.StatusCode.NOT_FOUND)


def test_a_shared_image_reaches_its_member_projects_only(stack: Stack, md: dict[str, Md], made: list[str]) -> None:
    private = upload(stack, md["alpha"], "vis-not-shared")
    made.append(private.id)
    fails(lambda: add_member(stack, md["alpha"], private.id, "beta"), grpc.StatusCode.FAILED_PRECONDITION)
    image = upload(stack, md["alpha"], "vis-shared", V.IMAGE_VISIBILITY_SHARED, b"shared " * 100)
    made.append(image.id)
    seen_as_missing(stack, md["beta"], image)
    member = add_member(stack, md["alpha"], "vis-shared", "beta")
    assert (member.image_id, member.project_id) == (image.id, "beta")
    fails(lambda: add_member(stack, md["alpha"], image.id, "beta"), grpc.StatusCode.ALREADY_EXISTS)
    assert get(stack, md["beta"], "vis-shared").id == image.id
    assert image.id in listed(stack, md["beta"])
    assert download(stack, md["beta"], image.id) == b"shared " * 100
    assert boot(stack, md["beta"], "vis-shared").image_id == image.id
    seen_as_missing(stack, md["gamma"], image)
    # a member may use it, not change it nor see its other members
    for call in (
        lambda: stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=md["beta"]),
        lambda: stack.images.UpdateImage(images_pb2.UpdateImageRequest(id=image.id, name="x"), metadata=md["beta"]),
        lambda: add_member(stack, md["beta"], image.id, "gamma"),
        lambda: stack.images.ListImageMembers(images_pb2.ListImageMembersRequest(image_id=image.id),
                                              metadata=md["beta"]),
    ):  # fmt: skip
        fails(call, grpc.StatusCode.PERMISSION_DENIED)
    members = stack.images.ListImageMembers(images_pb2.ListImageMembersRequest(image_id=image.id), metadata=md["alpha"])
    assert [m.project_id for m in members.members] == ["beta"]
    stack.images.RemoveImageMember(images_pb2.RemoveImageMemberRequest(image_id=image.id, project_id="beta"),
                                   metadata=md["alpha"])  # fmt: skip
    seen_as_missing(stack, md["beta"], image)


def test_only_an_admin_makes_an_image_public(stack: Stack, md: dict[str, Md], made: list[str]) -> None:
    tiny = get(stack, md["gamma"], "tiny")
    assert tiny.visibility == V.IMAGE_VISIBILITY_PUBLIC and tiny.owner_project_id == ""
    fails(
        lambda: upload(stack, md["alpha"], "vis-wannabe", V.IMAGE_VISIBILITY_PUBLIC), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "vis-wannabe" not in {i.name for i in stack.images.ListImages(images_pb2.ListImagesRequest(page_size=1000),
                                                                          metadata=md["admin"]).images}  # fmt: skip
    image = upload(stack, md["alpha"], "vis-public")
    made.append(image.id)
    public = images_pb2.UpdateImageRequest(id=image.id, visibility=V.IMAGE_VISIBILITY_PUBLIC)
    fails(lambda: stack.images.UpdateImage(public, metadata=md["alpha"]), grpc.StatusCode.PERMISSION_DENIED)
    assert stack.images.UpdateImage(public, metadata=md["admin"]).visibility == V.IMAGE_VISIBILITY_PUBLIC
    for project in ("beta", "gamma"):
        assert get(stack, md[project], "vis-public").id == image.id and image.id in listed(stack, md[project])
    # the owner may take it back to PRIVATE, and rename it
    private = images_pb2.UpdateImageRequest(
        id=image.id, name="vis-public-no-more", visibility=V.IMAGE_VISIBILITY_PRIVATE
    )
    updated = stack.images.UpdateImage(private, metadata=md["alpha"])
    assert (updated.name, updated.visibility) == ("vis-public-no-more", V.IMAGE_VISIBILITY_PRIVATE)
    seen_as_missing(stack, md["beta"], updated)


def test_names_resolve_in_the_project_then_shared_then_public(stack: Stack, md: dict[str, Md], made: list[str]) -> None:
    public_tiny = get(stack, md["admin"], "tiny")
    own_tiny = upload(stack, md["alpha"], "tiny")  # alpha's own image named like the public one
    made.append(own_tiny.id)
    assert boot(stack, md["alpha"], "tiny").image_id == own_tiny.id
    assert boot(stack, md["beta"], "tiny").image_id == public_tiny.id  # alpha's tiny breaks nothing for beta
    # gamma: a public image and a shared one with one name; the shared one wins
    public = upload(stack, md["admin"], "vis-tier", V.IMAGE_VISIBILITY_PUBLIC)
    shared = upload(stack, md["beta"], "vis-tier", V.IMAGE_VISIBILITY_SHARED)
    made.extend([public.id, shared.id])
    assert get(stack, md["gamma"], "vis-tier").id == public.id
    add_member(stack, md["beta"], shared.id, "gamma")
    assert get(stack, md["gamma"], "vis-tier").id == shared.id
    assert get(stack, md["alpha"], "vis-tier").id == public.id
    # two of one name in the tier that matches: the id is needed, and the message says so
    second = upload(stack, md["alpha"], "vis-tier")
    third = upload(stack, md["alpha"], "vis-tier")
    made.extend([second.id, third.id])
    err = fails(lambda: get(stack, md["alpha"], "vis-tier"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "use the id" in (err.details() or "")
    err = fails(lambda: boot(stack, md["alpha"], "vis-tier"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "use the id" in (err.details() or "")
    assert get(stack, md["gamma"], "vis-tier").id == shared.id  # alpha's two change nothing for gamma


def test_a_snapshot_is_private_to_the_servers_project(stack: Stack, md: dict[str, Md], made: list[str]) -> None:
    server = servers_pb2.Server(name="vis-snap", flavor_id="m1.tiny", image_id="tiny")
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=server), metadata=md["alpha"])
    try:
        stack.wait_for_server(created.id, {"ACTIVE"})
        request = servers_pb2.SnapshotServerRequest(id=created.id, image_name="vis-snapshot")
        image = stack.servers.SnapshotServer(request, metadata=md["admin"])  # an admin's snapshot: still alpha's
        made.append(image.id)
        assert (image.owner_project_id, image.visibility) == ("alpha", V.IMAGE_VISIBILITY_PRIVATE)
        assert image.id not in listed(stack, md["beta"])
        stack.wait_for_server(created.id, {"ACTIVE"})
    finally:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=created.id), metadata=stack.md())
        stack.wait_gone(created.id)

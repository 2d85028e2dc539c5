"""Image visibility and name tiers as pure rules (image_access)."""

from __future__ import annotations

import pytest

from services.api.images.access import Viewer, by_name, can_read, check_owner, check_visibility
from services.api.images.upload import describe_size
from services.core.errors import InvalidArgument, NotFound, PermissionDenied
from stratus.v1 import images_pb2

V = images_pb2.ImageVisibility


def image(image_id: str, owner: str, visibility: int = 0, name: str = "img") -> images_pb2.Image:
    return images_pb2.Image(id=image_id, name=name, owner_project_id=owner, visibility=visibility)  # type: ignore[arg-type]


ALPHA, BETA, ADMIN = Viewer("alpha"), Viewer("beta"), Viewer("admin", is_admin=True)


@pytest.mark.parametrize(
    ("visibility", "member", "beta_reads"),
    [
        (V.IMAGE_VISIBILITY_UNSPECIFIED, False, False),  # a record from before visibility: PRIVATE
        (V.IMAGE_VISIBILITY_PRIVATE, False, False),
        (V.IMAGE_VISIBILITY_PRIVATE, True, False),  # members of a PRIVATE image see nothing
        (V.IMAGE_VISIBILITY_SHARED, False, False),
        (V.IMAGE_VISIBILITY_SHARED, True, True),
        (V.IMAGE_VISIBILITY_PUBLIC, False, True),
    ],
)
def test_who_reads_an_image(visibility: int, member: bool, beta_reads: bool) -> None:
    img = image("i", "alpha", visibility)
    assert can_read(img, ALPHA, False) and can_read(img, ADMIN, False)
    assert can_read(img, BETA, member) is beta_reads


def test_only_the_owner_or_an_admin_changes_an_image_and_only_an_admin_makes_it_public() -> None:
    img = image("i", "alpha", V.IMAGE_VISIBILITY_PUBLIC)
    check_owner(img, ALPHA, "delete it")
    check_owner(img, ADMIN, "delete it")
    with pytest.raises(PermissionDenied):
        check_owner(img, BETA, "delete it")
    check_visibility(V.IMAGE_VISIBILITY_SHARED, ALPHA, "visibility")
    check_visibility(V.IMAGE_VISIBILITY_PUBLIC, ADMIN, "visibility")
    with pytest.raises(PermissionDenied):
        check_visibility(V.IMAGE_VISIBILITY_PUBLIC, ALPHA, "visibility")


def test_names_resolve_in_tiers_own_then_shared_then_public() -> None:
    own = image("own", "beta", V.IMAGE_VISIBILITY_PRIVATE)
    shared = image("shared", "alpha", V.IMAGE_VISIBILITY_SHARED)
    public = image("public", "gamma", V.IMAGE_VISIBILITY_PUBLIC)
    hidden = image("hidden", "delta", V.IMAGE_VISIBILITY_PRIVATE)
    member = {"shared"}.__contains__
    assert by_name([hidden, public, shared, own], "img", BETA, member, "id").id == "own"
    assert by_name([hidden, public, shared], "img", BETA, member, "id").id == "shared"
    assert by_name([hidden, public, shared], "img", BETA, lambda _: False, "id").id == "public"
    with pytest.raises(NotFound):
        by_name([hidden], "img", BETA, member, "id")
    assert by_name([hidden], "img", ADMIN, member, "id").id == "hidden"  # an admin's last tier: everything


def test_two_of_a_name_in_the_tier_that_matches_are_ambiguous_but_not_in_a_later_one() -> None:
    publics = [image("p1", "x", V.IMAGE_VISIBILITY_PUBLIC), image("p2", "y", V.IMAGE_VISIBILITY_PUBLIC)]
    assert by_name([*publics, image("mine", "beta")], "img", BETA, lambda _: False, "id").id == "mine"
    with pytest.raises(InvalidArgument, match="use the id"):
        by_name(publics, "img", BETA, lambda _: False, "server.image_id")


def test_sizes_read_as_people_write_them() -> None:
    assert describe_size(64 * 1024**3) == "64 GiB"
    assert describe_size(1536) == "1.5 KiB"
    assert describe_size(10) == "10 bytes"

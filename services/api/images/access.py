"""Who may see, boot and change an image, as Glance decides it; pure rules over records.

An image is seen by its owner's project, by admins, by everyone when PUBLIC and by its members'
projects when SHARED; anything else is NOT_FOUND, so a caller learns nothing of an image it may
not see. Only the owner's project or an admin changes an image or its members; only an admin
makes an image PUBLIC. A record from before visibility existed (UNSPECIFIED) is PRIVATE.

A name resolves in tiers: the caller's project's images, then the images shared with it, then
the public ones (an admin: then every other image); the first tier with a match decides, and two
matches in it are ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.core import context
from services.core.errors import InvalidArgument, NotFound, PermissionDenied
from stratus.v1 import images_pb2

Visibility = images_pb2.ImageVisibility
PRIVATE = Visibility.IMAGE_VISIBILITY_PRIVATE
PUBLIC = Visibility.IMAGE_VISIBILITY_PUBLIC
SHARED = Visibility.IMAGE_VISIBILITY_SHARED


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose eyes an image is looked up with: a project, and whether it sees everything."""

    project_id: str
    is_admin: bool = False

    @classmethod
    def current(cls) -> Viewer:
        ctx = context.current()
        return cls(ctx.project_id, ctx.is_admin)

    @classmethod
    def acting_for(cls, project_id: str) -> Viewer:
        """The caller acting for ``project_id``: an admin sees everything only in its own project
        (ExplainPlacement for another project resolves images as that project would)."""
        ctx = context.current()
        return cls(project_id, ctx.is_admin and project_id == ctx.project_id)


def visibility_of(image: images_pb2.Image) -> int:
    return image.visibility or PRIVATE


def can_read(image: images_pb2.Image, viewer: Viewer, is_member: bool) -> bool:
    if viewer.is_admin or image.owner_project_id == viewer.project_id:
        return True
    visibility = visibility_of(image)
    return visibility == PUBLIC or (visibility == SHARED and is_member)


def check_owner(image: images_pb2.Image, viewer: Viewer, what: str) -> None:
    """The owner's project or an admin may ``what`` (the caller already sees the image)."""
    if not viewer.is_admin and image.owner_project_id != viewer.project_id:
        raise PermissionDenied(f"only the project that owns image {image.id} may {what}", reason="NOT_IMAGE_OWNER")


def check_visibility(visibility: int, viewer: Viewer, field: str) -> None:
    """Only an admin makes an image PUBLIC."""
    if visibility == PUBLIC and not viewer.is_admin:
        raise PermissionDenied(f"only an admin may make an image PUBLIC ({field})", reason="ADMIN_REQUIRED")


def by_name(
    images: Iterable[images_pb2.Image], name: str, viewer: Viewer, is_member: Callable[[str], bool], field: str
) -> images_pb2.Image:
    """The image called ``name`` in the first tier that has one (see the module's doc)."""
    named = [i for i in images if i.name == name]
    tiers: list[Callable[[images_pb2.Image], bool]] = [
        lambda i: i.owner_project_id == viewer.project_id,
        lambda i: visibility_of(i) == SHARED and is_member(i.id),
        lambda i: visibility_of(i) == PUBLIC,
    ]
    if viewer.is_admin:
        tiers.append(lambda i: True)
    for in_tier in tiers:
        found = [i for i in named if in_tier(i)]
        if len(found) > 1:
            ids = ", ".join(sorted(i.id for i in found)[:5])
            raise InvalidArgument([(field, f"{len(found)} images are named {name!r}; use the id ({ids})")])
        if found:
            return found[0]
    raise NotFound("image", name, field=field)

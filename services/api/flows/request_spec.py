"""What the scheduler is asked: the RequestSpec for a server, built the same way for CreateServer,
for each scheduling attempt of a build, and for ExplainPlacement.

At create the flavor, image, server group and zone are checked (the image as the server's project
sees it: its own, shared with it or public; see images/access.py; the flavor against the image's
minimums and disk, see images/minimums.py, and so at a resize); at schedule time the flavor and
image are looked up again (by id, whoever owns them) for their extra specs and properties, and a
flavor or image deleted in between costs only those (the resources always come from the server record).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from services.api.flavors.manager import FlavorsManager
from services.api.images.access import Viewer
from services.api.images.manager import ImagesManager
from services.api.images.minimums import check_flavor_fits
from services.api.server_groups.manager import ServerGroupsManager
from services.api.zones import known_zones
from services.core import instances
from services.core.errors import FailedPrecondition, InvalidArgument, NotFound
from services.core.etcd import Store
from stratus.scheduler.v1 import scheduler_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a new server refers to, each checked to exist and be usable by the project."""

    flavor: flavors_pb2.Flavor
    image: images_pb2.Image
    group: state_pb2.ServerGroupRecord | None


def request_spec(
    server: servers_pb2.Server,
    flavor: flavors_pb2.Flavor | None,
    image: images_pb2.Image | None,
    ignore_hosts: Iterable[str] = (),
) -> scheduler_pb2.RequestSpec:
    """The spec for ``server``; resources from the server, extra specs and properties when known."""
    return scheduler_pb2.RequestSpec(
        instance_id=server.id, project_id=server.project_id, resources=server.resources,
        flavor_extra_specs=flavor.extra_specs if flavor else {}, image_properties=image.properties if image else {},
        availability_zone=server.availability_zone, server_group_id=server.server_group_id,
        scheduler_hints=server.scheduler_hints, ignore_hosts=ignore_hosts, flavor_id=server.flavor_id,
        flavor_name=flavor.name if flavor else "", image_id=server.image_id,
    )  # fmt: skip


def resources_of(flavor: flavors_pb2.Flavor) -> servers_pb2.ServerResources:
    return servers_pb2.ServerResources(vcpus=flavor.vcpus, ram_mb=flavor.ram_mb, disk_gb=flavor.disk_gb)


class SpecResolver:
    def __init__(
        self, store: Store, flavors: FlavorsManager, images: ImagesManager, groups: ServerGroupsManager
    ) -> None:
        self._store = store
        self._flavors = flavors
        self._images = images
        self._groups = groups

    @property
    def flavors(self) -> FlavorsManager:
        return self._flavors

    async def optional_image(self, image_id: str) -> images_pb2.Image | None:
        """The image with this id (a server's, checked when it was created), or None if it is gone
        (or was never given)."""
        found = await self._images.find(image_id) if image_id else None
        return found[0] if found else None

    async def resolve(self, server: servers_pb2.Server, project_id: str) -> Resolved:
        """Checks what a new server of ``project_id`` refers to: NOT_FOUND for an unknown flavor, image
        or group (or another project's group, or an image the project may not see),
        FAILED_PRECONDITION for an image not ACTIVE, INVALID_ARGUMENT for a zone no host is in or a
        flavor below the image's minimums or disk (naming ``server.flavor_id``)."""
        flavor = await self._flavors.get(server.flavor_id, "server.flavor_id")
        image = await self._images.get(server.image_id, "server.image_id", Viewer.acting_for(project_id))
        if image.status != images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
            raise FailedPrecondition(f"image {image.id} is not ACTIVE", reason="IMAGE_NOT_ACTIVE")
        check_flavor_fits(flavor, image, "server.flavor_id")
        group = None
        if server.server_group_id:
            group, _ = await self._groups.owned(server.server_group_id, project_id, "server.server_group_id")
        if server.availability_zone:
            await self.check_zone(server.availability_zone)
        return Resolved(flavor, image, group)

    async def check_image_fits(self, flavor: flavors_pb2.Flavor, image_id: str, field: str) -> None:
        """A resize: INVALID_ARGUMENT naming ``field`` when ``flavor`` is below what the server's
        image needs (nothing to check once that image is deleted)."""
        image = await self.optional_image(image_id)
        if image is not None:
            check_flavor_fits(flavor, image, field)

    async def check_zone(self, zone: str) -> None:
        known = await known_zones(self._store)
        if zone not in known:
            offered = ", ".join(sorted(known)) or "none"
            raise InvalidArgument([("server.availability_zone", f"no host is in zone {zone!r} (zones: {offered})")])

    async def for_record(self, record: state_pb2.InstanceRecord) -> scheduler_pb2.RequestSpec:
        """The spec for one scheduling attempt of a build."""
        server = (await instances.with_details(self._store, record)).server
        flavor = await self._optional(self._flavors.get(server.flavor_id)) if server.flavor_id else None
        image = await self.optional_image(server.image_id)
        return request_spec(server, flavor, image, record.tried_hosts)

    @staticmethod
    async def _optional(lookup: Awaitable[M]) -> M | None:
        try:
            return await lookup
        except NotFound:
            return None

"""Servers found by a unique name, and the flavor and image names a server list shows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import grpc

from services.cli import output
from services.cli.client import Api
from services.cli.lookup import id_for, list_all, resolve_id
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

NAME_MAX = 255  # the api's; nothing longer is a name
UNFILTERABLE = re.compile(r'"|\sAND\s')  # what a ListServers filter term cannot quote
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def servers_named(api: Api, wanted: str) -> list[servers_pb2.Server]:
    """The caller's servers named ``wanted`` (one filtered List when the name can be quoted); none for
    an id, which is taken as it is (as openstack tries an id first)."""
    if len(wanted) > NAME_MAX or not wanted.strip() or UUID.match(wanted):
        return []
    if UNFILTERABLE.search(wanted):
        everything = list_all(api, api.servers.ListServers, servers_pb2.ListServersRequest(), "servers")
        return [s for s in everything if s.name == wanted]
    request = servers_pb2.ListServersRequest(filter=f'name="{wanted}"')
    return list_all(api, api.servers.ListServers, request, "servers")


def server_id(api: Api, wanted: str) -> str:
    """The id of the one server named ``wanted``, else ``wanted`` as an id; raises ``lookup.Ambiguous``."""
    return resolve_id(servers_named(api, wanted), wanted, "server")


def resolve_server(api: Api, wanted: str) -> str:
    """``server_id`` for a command: an ambiguous name is an error asking for the id (exit 1)."""
    return id_for(servers_named(api, wanted), wanted, "server")


def names(api: Api, method: Any, request: Any, field: str) -> dict[str, str]:
    """id -> name of what the caller may see; empty when it may not list them (the ids are shown)."""
    try:
        items = list_all(api, method, request, field)
    except grpc.RpcError as err:
        output.err(f"warning: showing ids: {field} could not be listed ({err.code().name})")
        return {}
    return {item.id: item.name for item in items if item.name}


def name_of(api: Api, method: Any, request: Any, kind: str) -> str | None:
    """The name of one flavor or image; None when it is gone (a deleted image), or cannot be read."""
    try:
        name: str = api.call(method, request).name
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            output.err(f"warning: showing the id: the {kind} could not be read ({err.code().name})")
        return None
    return name or None


def names_of(api: Api, server: servers_pb2.Server) -> dict[str, str | None]:
    """``flavor_name`` and ``image_name`` of one server (one GetFlavor, one GetImage)."""
    flavor = name_of(api, api.flavors.GetFlavor, flavors_pb2.GetFlavorRequest(id=server.flavor_id), "flavor")
    image = name_of(api, api.images.GetImage, images_pb2.GetImageRequest(id=server.image_id), "image")
    return {"flavor_name": flavor, "image_name": image}


def flavor_and_image_names(api: Api) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """One ListFlavors and one ListImages: the names a server list shows."""
    flavors = names(api, api.flavors.ListFlavors, flavors_pb2.ListFlavorsRequest(), "flavors")
    images = names(api, api.images.ListImages, images_pb2.ListImagesRequest(), "images")
    return flavors, images

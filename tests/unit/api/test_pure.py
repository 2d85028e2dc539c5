"""Pure logic of the api: validation, list filters, page tokens, the seed image (auth: identity/test_policy.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.api import paging
from services.api.images.manager import seed_source
from services.api.servers import list_filter
from services.api.servers.manager import validate_create
from services.api.settings import ApiSettings
from services.core.boot_sector import MESSAGE, boot_sector, tiny_image
from services.core.errors import InvalidArgument
from stratus.v1 import servers_pb2 as pb


def violations(req: pb.CreateServerRequest) -> set[str]:
    with pytest.raises(InvalidArgument) as info:
        validate_create(req)
    return {field for field, _ in info.value.violations}


def test_create_validation_names_every_bad_field() -> None:
    assert violations(pb.CreateServerRequest()) == {"server", "server.name", "server.flavor_id", "server.image_id"}
    good = pb.Server(name="ok", flavor_id="f", image_id="i")
    validate_create(pb.CreateServerRequest(server=good))
    assert violations(pb.CreateServerRequest(server=good, request_id="a b")) == {"request_id"}
    bad_name = pb.Server(name="tab\there", flavor_id="f", image_id="i")
    assert violations(pb.CreateServerRequest(server=bad_name)) == {"server.name"}
    many = pb.Server(name="ok", flavor_id="f", image_id="i", metadata={str(i): "v" for i in range(200)})
    assert violations(pb.CreateServerRequest(server=many)) == {"server.metadata"}


@pytest.mark.parametrize(
    ("expr", "matches"),
    [
        ("", True),
        ("name=web", True),
        ('name="web" AND status=ACTIVE', True),
        ("name=web AND host=h2", False),
        ("status=BUILD", False),
    ],
)
def test_filter(expr: str, matches: bool) -> None:
    server = pb.Server(name="web", host="h1", status=pb.ServerStatus.SERVER_STATUS_ACTIVE)
    assert list_filter.parse(expr)(server) is matches


@pytest.mark.parametrize("expr", ["colour=red", "name", "name=a OR name=b"])
def test_bad_filter_names_the_filter_field(expr: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        list_filter.parse(expr)
    assert info.value.violations[0][0] == "filter"


def test_page_tokens_round_trip_and_refuse_forgeries() -> None:
    assert paging.decode(paging.encode("instances/abc"), "instances/") == "instances/abc"
    for bad in ("!!!", paging.encode("flavors/x")):
        with pytest.raises(InvalidArgument):
            paging.decode(bad, "instances/")


def test_seed_image_is_a_boot_sector_that_prints() -> None:
    sector = boot_sector()
    assert len(sector) == 512 and sector[-2:] == b"\x55\xaa"
    assert MESSAGE in sector
    address = int.from_bytes(sector[6:8], "little") - 0x7C00
    assert sector[address : address + len(MESSAGE)] == MESSAGE
    assert len(tiny_image()) == 1024 * 1024


def test_the_seed_is_the_built_guest_when_there_is_one(tmp_path: Path) -> None:
    guest = tmp_path / "tiny.qcow2"
    guest.write_bytes(b"QFI\xfb" + b"\x00" * (3 * 1024 * 1024))
    meta, chunks, source = seed_source(guest)
    assert (meta.disk_format, meta.properties["os_distro"], source) == ("qcow2", "stratus-tiny", str(guest))

    async def sizes() -> list[int]:
        return [len(c) async for c in chunks]

    assert asyncio.run(sizes()) == [1024 * 1024] * 3 + [4]  # streamed, 1 MiB at a time
    meta, chunks, _ = seed_source(tmp_path / "missing.qcow2")
    assert meta.disk_format == "raw" and "os_distro" not in meta.properties


def test_the_default_seed_file_is_the_repos_built_guest() -> None:
    assert ApiSettings().seed_image_file == Path(__file__).resolve().parents[3] / "build/guest/tiny.qcow2"
    assert (ApiSettings().build_timeout_s, ApiSettings().snapshot_timeout_s) == (1800, 1800)

"""The bounds every public request keeps (services/api/validation.py) and short error echoes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.api.images.upload import check_checksum, check_magic, sniffed
from services.api.servers.manager import body_digest
from services.api.validation import Violations, check_request, unreadable
from services.core.errors import AlreadyExists, InvalidArgument, NotFound, shorten, to_status
from stratus.v1 import flavors_pb2, images_pb2, servergroups_pb2, servers_pb2, services_pb2


def problems(request: object) -> dict[str, str]:
    try:
        check_request(request)  # type: ignore[arg-type]
    except InvalidArgument as exc:
        return dict(exc.violations)
    return {}


def test_shorten_keeps_short_values_and_cuts_long_ones_with_an_ellipsis() -> None:
    assert shorten("abc") == "abc"
    cut = shorten("x" * 1000)
    assert len(cut) == 64 and cut.endswith("\u2026")


def test_not_found_and_violations_echo_little() -> None:
    err = NotFound("server", "x" * 16 * 1024, field="id")
    assert len(err.message) < 100 and len(err.name) == 64
    assert len(to_status(err).details) < 400
    many = InvalidArgument([(f"f{i}" * 100, "why" * 1000) for i in range(500)])
    assert len(many.violations) == 21 and all(len(f) <= 128 and len(w) <= 256 for f, w in many.violations)
    assert len(AlreadyExists("y" * 100_000).message) <= 2048


def test_unreadable_finds_control_and_format_characters() -> None:
    assert unreadable("plain name, ünïcode ok") is None
    assert unreadable("a\u202eb") == "U+202E"
    assert unreadable("zero\u200bwidth") == "U+200B"
    assert unreadable("tab\there") == "U+0009"


def test_a_valid_request_has_no_problems() -> None:
    server = servers_pb2.Server(name="web-1", flavor_id="m1 tiny", image_id="tiny", metadata={"k": "v"},
                                availability_zone="nova", scheduler_hints={"same_host": "abc"})  # fmt: skip
    assert problems(servers_pb2.CreateServerRequest(server=server, request_id="req:1")) == {}
    assert problems(servers_pb2.ListServersRequest(filter="status=ACTIVE" * 50, page_size=10)) == {}
    assert problems(flavors_pb2.GetFlavorRequest(id="my flavor")) == {}  # flavors and images take names too
    assert problems(servers_pb2.RebootServerRequest(id="abc")) == {}  # UNSPECIFIED: the default, soft


def test_strings_are_bounded_by_kind() -> None:
    assert "id" in problems(servers_pb2.GetServerRequest(id="x" * 129))
    assert "id" in problems(servers_pb2.GetServerRequest(id="has space"))
    assert "id" in problems(images_pb2.GetImageRequest(id="x" * 256))
    assert "host" in problems(services_pb2.UpdateServiceRequest(binary="compute", host="h" * 256))
    assert "disabled_reason" in problems(services_pb2.UpdateServiceRequest(disabled_reason="r" * 1024 * 1024))
    assert "filter" in problems(servers_pb2.ListServersRequest(filter="x" * 1025))
    assert "request_id" in problems(servers_pb2.CreateServerRequest(request_id="r" * 129))
    assert "server.availability_zone" in problems(servers_pb2.CreateServerRequest(
        server=servers_pb2.Server(availability_zone="a\u202e")))  # fmt: skip


def test_maps_are_bounded_and_readable() -> None:
    def server_problems(**fields: dict[str, str]) -> dict[str, str]:
        return problems(servers_pb2.CreateServerRequest(server=servers_pb2.Server(**fields)))  # type: ignore[arg-type]

    assert "server.metadata['k']" in server_problems(metadata={"k": "a\u202eb"})
    assert "server.metadata['k']" in server_problems(metadata={"k": "v" * 1025})
    assert "server.scheduler_hints['h\\n']" in server_problems(scheduler_hints={"h\n": "v"})
    assert "server.metadata" in server_problems(metadata={str(i): "v" for i in range(129)})
    long_key = server_problems(metadata={"k" * 1000: "v"})
    assert len(long_key) == 1 and all(len(field) < 100 for field in long_key)


def test_enums_must_be_defined_values() -> None:
    bad = problems(servers_pb2.RebootServerRequest(id="abc", type=99))  # type: ignore[arg-type]
    assert "type" in bad and "RebootType" in bad["type"]
    group = servergroups_pb2.ServerGroup(name="g", policy=42)  # type: ignore[arg-type]
    assert "server_group.policy" in problems(servergroups_pb2.CreateServerGroupRequest(server_group=group))


def test_violations_name_and_pattern_check_length_first() -> None:
    v = Violations()
    v.name("name", "n" * 300)
    v.identifier("group", "g" * 300)
    v.text("zone", "ok")
    assert [field for field, _ in v.items] == ["name", "group"]


def test_body_digest_ignores_map_order_but_not_content() -> None:
    a = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name="a", metadata={"x": "1", "y": "2"}))
    b = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name="a", metadata={"y": "2", "x": "1"}))
    c = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name="b", metadata={"x": "1", "y": "2"}))
    assert body_digest(a) == body_digest(b) != body_digest(c)


def test_the_magic_must_agree_with_the_disk_format() -> None:
    check_magic(b"QFI\xfb\0\0\0\3", "qcow2")
    check_magic(b"\xeb\x63\x90", "raw")
    with pytest.raises(InvalidArgument):
        check_magic(b"\0\0\0\0", "qcow2")
    with pytest.raises(InvalidArgument):
        check_magic(b"QFI\xfb", "raw")


def test_sniffed_checks_a_magic_split_across_chunks() -> None:
    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def drain(disk_format: str, *parts: bytes) -> bytes:
        return b"".join([c async for c in sniffed(chunks(*parts), disk_format)])

    assert asyncio.run(drain("qcow2", b"Q", b"FI", b"\xfbrest")) == b"QFI\xfbrest"
    with pytest.raises(InvalidArgument):
        asyncio.run(drain("raw", b"QF", b"I\xfb"))
    assert asyncio.run(drain("raw", b"ab")) == b"ab"


def test_a_checksum_mismatch_names_both_values() -> None:
    check_checksum("", "abc")
    check_checksum("ABC", "abc")
    with pytest.raises(InvalidArgument) as info:
        check_checksum("a" * 64, "b" * 64)
    assert "a" * 64 in info.value.message and "b" * 64 in info.value.message

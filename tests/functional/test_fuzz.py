"""Fuzz every unary method of every public stratus.v1 service (found by reflection over the
generated descriptors) with generated requests: huge, control and bidi strings, out-of-range
integers and enum values. The answer is never INTERNAL nor UNKNOWN, and comes within seconds.

Bytes that are not a request at all, sent to every method each port serves (found through gRPC
reflection; streams included), are UNAUTHENTICATED without a valid token and INVALID_ARGUMENT
with one (an internal port: with a certificate of a role that may call it); neither they nor a
client dropping a stream leave an error in the logs.

Whatever the fuzzing creates (a flavor, a group, an aggregate) is deleted after, and the seeded
names are never sent, so the shared stack is left as it was for the other tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratus.v1 import (
    aggregates_pb2,
    flavors_pb2,
    hosts_pb2,
    images_pb2,
    keypairs_pb2,
    placement_pb2,
    quotas_pb2,
    servergroups_pb2,
    servers_pb2,
    services_pb2,
    tokens_pb2,
)
from tests.support.methods import Method, served_methods
from tests.support.stack import Stack

MODULES = (servers_pb2, flavors_pb2, images_pb2, services_pb2, hosts_pb2, servergroups_pb2, aggregates_pb2,
           placement_pb2, keypairs_pb2, quotas_pb2, tokens_pb2)  # fmt: skip
SEEDED = frozenset({"tiny", "m1.tiny", "m1.small", "m1.medium"})
CALL_TIMEOUT_S = 5.0
MAX_DEPTH = 3
EXAMPLES = 30  # per method: ~10 s for all of them
INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def unary_methods() -> list[MethodDescriptor]:
    return [
        method
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if not method.client_streaming and not method.server_streaming
    ]


def strings() -> st.SearchStrategy[str]:
    nasty = st.sampled_from(["\u202e", "\x00", "\n", "\x7f", "\u200b", "\ufeff", "%s", "../", "'", '"', "\U0001f600"])
    return st.one_of(
        st.text(max_size=20),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Lo"]), max_size=40),
        st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(64, 20_000)),
        st.lists(st.one_of(nasty, st.text(max_size=5)), max_size=8).map("".join),
    ).filter(lambda s: s not in SEEDED)


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return strings()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=2048)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=False, width=32)
    low, high = INT_RANGES[field.type]
    if field.type == FieldDescriptor.TYPE_ENUM:  # mostly near the defined values, sometimes anywhere
        return st.one_of(st.integers(-3, 12), st.integers(low, high))
    return st.one_of(st.integers(-3, 3), st.integers(low, high))


def field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return st.dictionaries(scalar(key), single(value, depth), max_size=4)
    if field.is_repeated:
        return st.lists(single(field, depth), max_size=3)
    return single(field, depth)


def single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    return scalar(field)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    if depth >= MAX_DEPTH:
        return st.just(cls())
    optional = {f.name: field_values(f, depth) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda kw: build(cls, kw))


def build(cls: Callable[[], Message], values: dict[str, Any]) -> Message:
    msg = cls()
    for name, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            target = getattr(msg, name)
            for key, item in value.items():
                if entry.fields_by_name["value"].message_type is not None:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            getattr(msg, name).extend(value)
        elif field.message_type is not None:
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def created(stack: Stack) -> dict[str, set[str]]:
    md = stack.md()
    flavors = stack.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(page_size=1000), metadata=md).flavors
    aggregates = stack.aggregates.ListAggregates(aggregates_pb2.ListAggregatesRequest(), metadata=md).aggregates
    groups_req = servergroups_pb2.ListServerGroupsRequest(all_projects=True, page_size=1000)
    groups = stack.server_groups.ListServerGroups(groups_req, metadata=md).server_groups
    return {"flavors": {f.id for f in flavors}, "aggregates": {a.id for a in aggregates},
            "groups": {g.id for g in groups}}  # fmt: skip


@pytest.fixture(scope="module")
def leaves_no_trace(stack: Stack) -> Iterator[None]:
    before = created(stack)
    yield
    after, md = created(stack), stack.md()
    for flavor_id in after["flavors"] - before["flavors"]:
        stack.flavors.DeleteFlavor(flavors_pb2.DeleteFlavorRequest(id=flavor_id), metadata=md)
    for aggregate_id in after["aggregates"] - before["aggregates"]:
        stack.aggregates.DeleteAggregate(aggregates_pb2.DeleteAggregateRequest(id=aggregate_id), metadata=md)
    for group_id in after["groups"] - before["groups"]:
        stack.server_groups.DeleteServerGroup(servergroups_pb2.DeleteServerGroupRequest(id=group_id), metadata=md)


@pytest.mark.parametrize("method", unary_methods(), ids=lambda m: m.full_name)
def test_no_request_is_an_internal_error(stack: Stack, leaves_no_trace: None, method: MethodDescriptor) -> None:
    response_cls = message_factory.GetMessageClass(method.output_type)
    assert stack.channel is not None
    call = stack.channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large])  # fmt: skip
    @given(messages(method.input_type))
    def check(request: Message) -> None:
        try:
            call(request, metadata=stack.md(), timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as err:
            code, details = err.code(), err.details() or ""  # type: ignore[attr-defined]
            bad = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED)
            # an echo too long for the trailers turns the real error into a transport one
            transport = code == grpc.StatusCode.RESOURCE_EXHAUSTED and "Stream removed" in details
            assert code not in bad and not transport, f"{method.full_name}({request!r:.300}) -> {code}: {details:.300}"
            assert len(details) <= 4096

    check()


# ---- bytes that are not a request --------------------------------------------------------------
GARBAGE = b"\xff\xff\xff"  # a truncated varint: no request message decodes from it
# The loggers a call's failure speaks through: gRPC's ("Unexpected [DecodeError]", "ExecuteBatchError
# raised in core"), OpenTelemetry's ("Failed to detach context"), asyncio's ("Task exception was
# never retrieved": a ContextVar "created in a different Context") and the interceptor's.
CALL_LOGGERS = ("grpc._cython.cygrpc", "opentelemetry.context", "asyncio", "services.core.interceptors")


def send_garbage(channel: grpc.Channel, method: Method, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    """What ``method`` answers GARBAGE as its request (of a request stream: its only message)."""
    try:
        if method.descriptor.client_streaming:
            channel.stream_unary(method.path)(iter([GARBAGE]), metadata=metadata, timeout=CALL_TIMEOUT_S)
        elif method.descriptor.server_streaming:
            for _ in channel.unary_stream(method.path)(GARBAGE, metadata=metadata, timeout=CALL_TIMEOUT_S):
                pass
        else:
            channel.unary_unary(method.path)(GARBAGE, metadata=metadata, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[attr-defined,no-any-return]
    return grpc.StatusCode.OK


def log_sizes(stack: Stack) -> dict[Path, int]:
    return {log: log.stat().st_size for log in (stack.state_dir / "logs").glob("*.log")}


def loud_lines(stack: Stack, since: dict[Path, int]) -> list[str]:
    """What the stack's processes logged after ``since`` above INFO through CALL_LOGGERS, and any
    traceback printed bare."""
    out = []
    for log in (stack.state_dir / "logs").glob("*.log"):
        if log.name == "etcd.log":
            continue
        with log.open("rb") as fh:
            fh.seek(since.get(log, 0))
            for line in fh.read().decode(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # the launcher's header lines, or something printed bare
                    loud = line.startswith("Traceback")
                else:
                    loud = record.get("level") not in ("DEBUG", "INFO") and record.get("logger") in CALL_LOGGERS
                if loud:
                    out.append(f"{log.name}: {line[:400]}")
    return out


def test_garbage_bytes_to_every_public_method(stack: Stack) -> None:
    assert stack.channel is not None
    before = log_sizes(stack)
    methods = served_methods(stack.channel)
    assert any(m.descriptor.client_streaming for m in methods) and any(m.descriptor.server_streaming for m in methods)
    wrong = []
    for method in methods:
        who = "service" if method.service.startswith("stratus.imagestore.") else "admin"  # may call it
        for label, metadata, expected in (
            ("no token", [], grpc.StatusCode.UNAUTHENTICATED),
            ("a forged token", [("authorization", "Bearer forged")], grpc.StatusCode.UNAUTHENTICATED),
            (f"the {who} token", stack.md(who), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            code = send_garbage(stack.channel, method, metadata)
            if code != expected:
                wrong.append(f"{method.path} with {label}: {code.name}, expected {expected.name}")
    for descriptor in health_pb2.DESCRIPTOR.services_by_name["Health"].methods:  # unguarded: no token needed
        health = Method(f"/grpc.health.v1.Health/{descriptor.name}", descriptor)
        if (code := send_garbage(stack.channel, health, [])) != grpc.StatusCode.INVALID_ARGUMENT:
            wrong.append(f"{health.path}: {code.name}")
    assert not wrong, "\n".join(wrong)
    assert not loud_lines(stack, before), loud_lines(stack, before)


def test_garbage_bytes_to_every_internal_method(stack: Stack) -> None:
    before = log_sizes(stack)
    wrong, probed = [], set()
    for entry in stack.info["services"]:
        if entry["binary"] == "api":
            continue
        with stack.channel_to(entry["endpoint"], "api") as channel:  # the api may call every internal port
            for method in served_methods(channel):
                probed.add(entry["binary"])
                if (code := send_garbage(channel, method, [])) != grpc.StatusCode.INVALID_ARGUMENT:
                    wrong.append(f"{entry['binary']} {method.path}: {code.name}")
    assert probed == {"compute", "scheduler", "servicegroup"}, probed  # not a pass over no method at all
    assert not wrong, "\n".join(wrong)
    assert not loud_lines(stack, before), loud_lines(stack, before)


def test_a_client_dropping_a_stream_leaves_no_error(stack: Stack) -> None:
    md = stack.md("demo")
    meta = images_pb2.Image(name="fuzz-dropped-download", disk_format="raw")
    chunks = [images_pb2.UploadImageRequest(chunk=b"\0" * (1 << 20)) for _ in range(8)]
    image = stack.images.UploadImage(iter([images_pb2.UploadImageRequest(metadata=meta), *chunks]), metadata=md)
    before = log_sizes(stack)
    try:
        for _ in range(20):  # the write that fails can beat gRPC's news of the cancellation
            download = stack.images.DownloadImage(images_pb2.DownloadImageRequest(id=image.id), metadata=md)
            next(download)  # the server is ahead, waiting for the transport to take the next chunk
            download.cancel()  # type: ignore[attr-defined]
        watch = stack.servers.WatchServers(servers_pb2.WatchServersRequest(), metadata=md, timeout=30)
        watch.cancel()  # type: ignore[attr-defined]
    finally:
        stack.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=md)
    time.sleep(1.0)  # a generator left open would be closed (from another task) by now
    assert not loud_lines(stack, before), loud_lines(stack, before)

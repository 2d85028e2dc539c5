"""Fuzz every unary method of every public stratus.v1 service (found by reflection over the
generated descriptors) with generated requests: huge, control and bidi strings, out-of-range
integers and enum values. The answer is never INTERNAL nor UNKNOWN, and comes within seconds.

Whatever the fuzzing creates (a flavor, a group, an aggregate) is deleted after, and the seeded
names are never sent, so the shared stack is left as it was for the other tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
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

"""The methods a port serves, found through gRPC reflection (so a new one is covered the day it is
added), and one call of any of them with an empty request whose code is what a test judges."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

CALL_TIMEOUT_S = 10.0
DENIED = grpc.StatusCode.PERMISSION_DENIED
REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
NOWHERE = "00000000-0000-7000-8000-000000000000"  # an id nothing has


@dataclass(frozen=True)
class Method:
    path: str
    descriptor: MethodDescriptor

    @property
    def service(self) -> str:
        return self.path.strip("/").split("/")[0]

    @property
    def name(self) -> str:
        return self.path.strip("/").split("/")[1]

    def request(self) -> Message:
        msg = message_factory.GetMessageClass(self.descriptor.input_type)()
        if "id" in self.descriptor.input_type.fields_by_name:
            msg.id = NOWHERE  # type: ignore[attr-defined]
        return msg


def served_methods(channel: grpc.Channel) -> list[Method]:
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    out: list[Method] = []
    for name in db.get_services():
        if name.startswith("grpc."):
            continue
        service = pool.FindServiceByName(name)
        out.extend(Method(f"/{name}/{m.name}", m) for m in service.methods)
    return out


def call(channel: grpc.Channel, method: Method, token: str | None = None) -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token else []
    kw = {"request_serializer": lambda m: m.SerializeToString(), "response_deserializer": lambda b: b}
    try:
        if method.descriptor.client_streaming:
            channel.stream_unary(method.path, **kw)(iter(()), metadata=metadata, timeout=CALL_TIMEOUT_S)
        elif method.descriptor.server_streaming:
            stream = channel.unary_stream(method.path, **kw)(
                method.request(), metadata=metadata, timeout=CALL_TIMEOUT_S
            )
            try:
                next(stream, None)
            finally:
                stream.cancel()
        else:
            channel.unary_unary(method.path, **kw)(method.request(), metadata=metadata, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
        # a stream let through but answering nothing before the deadline passed the gate too
        return grpc.StatusCode.OK if code == grpc.StatusCode.DEADLINE_EXCEEDED else code
    return grpc.StatusCode.OK

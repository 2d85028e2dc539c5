"""Bad input, unknown ids and auth: the status code, and the field or resource it names."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import flavors_pb2, hosts_pb2, images_pb2, servers_pb2, services_pb2
from tests.support.stack import Stack


def tiny_request(name: str) -> servers_pb2.CreateServerRequest:
    return servers_pb2.CreateServerRequest(server=servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny"))


def fails(call: object, code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    assert info.value.code() == code, info.value.details()
    return info.value


def field_violations(err: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def error_reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def test_create_without_fields_names_each_missing_one(stack: Stack) -> None:
    req = servers_pb2.CreateServerRequest(server=servers_pb2.Server())
    err = fails(lambda: stack.servers.CreateServer(req, metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(field_violations(err)) >= {"server.name", "server.flavor_id", "server.image_id"}
    empty = servers_pb2.CreateServerRequest()
    err = fails(lambda: stack.servers.CreateServer(empty, metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)
    assert "server" in field_violations(err)


def test_create_with_unknown_flavor_or_image_is_not_found(stack: Stack) -> None:
    bad_flavor = servers_pb2.Server(name="x", flavor_id="no-such-flavor", image_id="tiny")
    err = fails(lambda: stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=bad_flavor),
                                                   metadata=stack.md()), grpc.StatusCode.NOT_FOUND)  # fmt: skip
    assert "no-such-flavor" in (err.details() or "")
    assert field_violations(err) == {"server.flavor_id": "no such flavor"}  # which field named it
    bad_image = servers_pb2.Server(name="x", flavor_id="m1.tiny", image_id="no-such-image")
    err = fails(lambda: stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=bad_image),
                                                   metadata=stack.md()), grpc.StatusCode.NOT_FOUND)  # fmt: skip
    assert field_violations(err) == {"server.image_id": "no such image"}


def test_malformed_values_are_invalid_argument(stack: Stack) -> None:
    server = servers_pb2.Server(name="x" * 300, flavor_id="m1.tiny", image_id="tiny")
    req = servers_pb2.CreateServerRequest(server=server, request_id="has spaces")
    err = fails(lambda: stack.servers.CreateServer(req, metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"server.name", "request_id"}
    err = fails(lambda: stack.servers.ListServers(servers_pb2.ListServersRequest(filter="colour=red"),
                                                  metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "filter" in field_violations(err)
    err = fails(lambda: stack.servers.ListServers(servers_pb2.ListServersRequest(page_token="garbage!"),
                                                  metadata=stack.md()), grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "page_token" in field_violations(err)
    bad = flavors_pb2.Flavor(name="f", vcpus=0, ram_mb=-1)
    err = fails(lambda: stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=bad), metadata=stack.md()),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert set(field_violations(err)) == {"flavor.vcpus", "flavor.ram_mb"}


def test_unknown_ids_are_not_found(stack: Stack) -> None:
    md = stack.md()
    missing = "00000000-0000-7000-8000-000000000000"
    for call in (
        lambda: stack.servers.GetServer(servers_pb2.GetServerRequest(id=missing), metadata=md),
        lambda: stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=missing), metadata=md),
        lambda: stack.servers.StopServer(servers_pb2.StopServerRequest(id=missing), metadata=md),
        lambda: stack.flavors.GetFlavor(flavors_pb2.GetFlavorRequest(id=missing), metadata=md),
        lambda: stack.images.GetImage(images_pb2.GetImageRequest(id=missing), metadata=md),
        lambda: stack.hosts.GetHost(hosts_pb2.GetHostRequest(host="no-such-host"), metadata=md),
    ):
        err = fails(call, grpc.StatusCode.NOT_FOUND)
        assert error_reason(err) == "NOT_FOUND"
    err = fails(lambda: stack.servers.GetServer(servers_pb2.GetServerRequest(), metadata=md),
                grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert "id" in field_violations(err)


def test_missing_or_bad_token_is_unauthenticated(stack: Stack) -> None:
    req = servers_pb2.ListServersRequest()
    err = fails(lambda: stack.servers.ListServers(req), grpc.StatusCode.UNAUTHENTICATED)
    assert error_reason(err) == "MISSING_TOKEN"
    err = fails(lambda: stack.servers.ListServers(req, metadata=[("authorization", "Bearer nope")]),
                grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    assert error_reason(err) == "BAD_TOKEN"
    fails(lambda: stack.servers.ListServers(req, metadata=[("authorization", "Basic abc")]),
          grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip


def test_member_is_refused_admin_methods(stack: Stack) -> None:
    md = stack.md("demo")
    flavor = flavors_pb2.Flavor(name="sneaky", vcpus=1, ram_mb=64, disk_gb=1)
    for call in (
        lambda: stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=flavor), metadata=md),
        lambda: stack.flavors.DeleteFlavor(flavors_pb2.DeleteFlavorRequest(id="m1.tiny"), metadata=md),
        lambda: stack.services.ListServices(services_pb2.ListServicesRequest(), metadata=md),
        lambda: stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=md),
        lambda: stack.servers.ListServers(servers_pb2.ListServersRequest(all_projects=True), metadata=md),
    ):
        fails(call, grpc.StatusCode.PERMISSION_DENIED)


def test_a_project_cannot_see_another_projects_server(stack: Stack) -> None:
    server = stack.servers.CreateServer(
        servers_pb2.CreateServerRequest(
            server=servers_pb2.Server(name="private", flavor_id="m1.tiny", image_id="tiny")
        ),
        metadata=stack.md(),
    )
    demo = stack.md("demo")
    fails(lambda: stack.servers.GetServer(servers_pb2.GetServerRequest(id=server.id), metadata=demo),
          grpc.StatusCode.NOT_FOUND)  # fmt: skip
    fails(lambda: stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=demo),
          grpc.StatusCode.NOT_FOUND)  # fmt: skip
    listed = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=demo).servers
    assert server.id not in {s.id for s in listed}
    everything = stack.servers.ListServers(servers_pb2.ListServersRequest(all_projects=True), metadata=stack.md())
    assert server.id in {s.id for s in everything.servers}
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)


def test_the_actions_on_an_unknown_server_are_not_found(stack: Stack) -> None:
    md = stack.md()
    missing = "00000000-0000-7000-8000-000000000000"
    for call in (
        lambda: stack.servers.PauseServer(servers_pb2.PauseServerRequest(id=missing), metadata=md),
        lambda: stack.servers.ResizeServer(servers_pb2.ResizeServerRequest(id=missing, flavor_id="m1.small"),
                                           metadata=md),
        lambda: stack.servers.ConfirmServerResize(servers_pb2.ConfirmServerResizeRequest(id=missing), metadata=md),
        lambda: stack.servers.GetServerConsoleOutput(servers_pb2.GetServerConsoleOutputRequest(id=missing),
                                                     metadata=md),
        lambda: stack.servers.SnapshotServer(servers_pb2.SnapshotServerRequest(id=missing, image_name="x"),
                                             metadata=md),
    ):  # fmt: skip
        fails(call, grpc.StatusCode.NOT_FOUND)


def test_stop_of_a_stopped_server_is_failed_precondition(stack: Stack) -> None:
    server = stack.servers.CreateServer(tiny_request("pre"), metadata=stack.md())
    stack.wait_for_server(server.id, {"ACTIVE"})
    stack.servers.StopServer(servers_pb2.StopServerRequest(id=server.id), metadata=stack.md())
    stack.wait_for_server(server.id, {"SHUTOFF"})
    err = fails(lambda: stack.servers.StopServer(servers_pb2.StopServerRequest(id=server.id), metadata=stack.md()),
                grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    assert "SHUTOFF" in (err.details() or "")
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)

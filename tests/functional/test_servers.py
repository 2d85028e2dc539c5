"""A server's life through the public API: create, ACTIVE, watch, list, actions, delete."""

from __future__ import annotations

import threading
import uuid

from stratus.v1 import hosts_pb2, servers_pb2
from tests.support.stack import Stack

S = servers_pb2.ServerStatus


def create(
    stack: Stack, name: str, who: str = "admin", flavor: str = "m1.tiny", request_id: str = ""
) -> servers_pb2.Server:
    server = servers_pb2.Server(name=name, flavor_id=flavor, image_id="tiny")
    req = servers_pb2.CreateServerRequest(server=server, request_id=request_id)
    created: servers_pb2.Server = stack.servers.CreateServer(req, metadata=stack.md(who))
    return created


def used_ram(stack: Stack) -> int:
    hosts = stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts
    return sum(h.ram_mb_used for h in hosts)


def test_create_to_active_to_deleted(stack: Stack) -> None:
    before = used_ram(stack)
    server = create(stack, "life")
    assert server.status == S.SERVER_STATUS_BUILD and server.id
    assert server.project_id == "admin" and server.resources.ram_mb == 128
    active = stack.wait_for_server(server.id, {"ACTIVE"})
    assert active.host in ("compute-1", "compute-2")
    assert active.power_state == servers_pb2.PowerState.POWER_STATE_RUNNING
    assert used_ram(stack) == before + 128
    deleting = stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    assert deleting.task_state == servers_pb2.TaskState.TASK_STATE_DELETING
    stack.wait_gone(server.id)
    assert used_ram(stack) == before


def test_create_is_idempotent_on_request_id(stack: Stack) -> None:
    rid = str(uuid.uuid4())
    first = create(stack, "idem", request_id=rid)
    again = create(stack, "idem", request_id=rid)
    assert again.id == first.id
    stack.wait_for_server(first.id, {"ACTIVE"})
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=first.id), metadata=stack.md())
    stack.wait_gone(first.id)


def test_watch_follows_one_server_from_build_to_deleted(stack: Stack) -> None:
    server = create(stack, "watched", who="demo")
    seen: list[servers_pb2.ServerEvent] = []
    active = threading.Event()

    def follow() -> None:
        stream = stack.servers.WatchServers(servers_pb2.WatchServersRequest(id=server.id), metadata=stack.md("demo"))
        for event in stream:  # the stream ends by itself once the server is deleted
            seen.append(event)
            if event.server.status == S.SERVER_STATUS_ACTIVE:
                active.set()

    t = threading.Thread(target=follow)
    t.start()
    assert active.wait(30), [S.Name(e.server.status) for e in seen]
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md("demo"))
    t.join(30)
    assert not t.is_alive(), "the watch did not end after the delete"
    last = seen[-1]
    assert last.type == servers_pb2.ServerEventType.SERVER_EVENT_TYPE_DELETED
    assert last.server.status == S.SERVER_STATUS_DELETED
    assert last.server.power_state == servers_pb2.PowerState.POWER_STATE_NOSTATE
    stack.wait_gone(server.id)


def test_list_pages_and_filters_within_the_project(stack: Stack) -> None:
    made = [create(stack, f"page-{i}", who="demo") for i in range(3)]
    for s in made:
        stack.wait_for_server(s.id, {"ACTIVE"}, who="demo")
    seen: list[str] = []
    token = ""
    while True:
        req = servers_pb2.ListServersRequest(page_size=2, page_token=token, filter='name="page-1" AND status=ACTIVE')
        reply = stack.servers.ListServers(req, metadata=stack.md("demo"))
        seen += [s.id for s in reply.servers]
        token = reply.next_page_token
        if not token:
            break
    assert seen == [made[1].id]
    everything: list[str] = []
    token = ""
    while True:
        reply = stack.servers.ListServers(servers_pb2.ListServersRequest(page_size=1, page_token=token),
                                          metadata=stack.md("demo"))  # fmt: skip
        assert len(reply.servers) <= 1
        everything += [s.id for s in reply.servers]
        token = reply.next_page_token
        if not token:
            break
    assert [s.id for s in made] == [i for i in everything if i in {s.id for s in made}]
    admin_view = stack.servers.ListServers(servers_pb2.ListServersRequest(), metadata=stack.md()).servers
    assert not {s.id for s in made} & {s.id for s in admin_view}  # admin's own project only
    for s in made:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=s.id), metadata=stack.md("demo"))
    for s in made:
        stack.wait_gone(s.id)


def test_stop_start_reboot(stack: Stack) -> None:
    server = create(stack, "power")
    stack.wait_for_server(server.id, {"ACTIVE"})
    ident = {"id": server.id}
    stack.servers.StopServer(servers_pb2.StopServerRequest(**ident), metadata=stack.md())
    stopped = stack.wait_for_server(server.id, {"SHUTOFF"})
    assert stopped.power_state == servers_pb2.PowerState.POWER_STATE_SHUTDOWN
    stack.servers.StartServer(servers_pb2.StartServerRequest(**ident), metadata=stack.md())
    stack.wait_for_server(server.id, {"ACTIVE"})
    hard = servers_pb2.RebootType.REBOOT_TYPE_HARD
    stack.servers.RebootServer(servers_pb2.RebootServerRequest(id=server.id, type=hard), metadata=stack.md())
    stack.wait_for_server(server.id, {"ACTIVE"})
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(**ident), metadata=stack.md())
    stack.wait_gone(server.id)


def test_too_big_for_every_host_goes_to_error_saying_why(stack: Stack) -> None:
    from stratus.v1 import flavors_pb2

    big = flavors_pb2.Flavor(name=f"huge-{uuid.uuid4().hex[:6]}", vcpus=2, ram_mb=64 * 1024, disk_gb=10)
    flavor = stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=big), metadata=stack.md())
    server = create(stack, "too-big", flavor=flavor.id)
    failed = stack.wait_for_server(server.id, {"ERROR"})
    assert failed.fault.code == "RESOURCE_EXHAUSTED"
    assert failed.fault.reason == "NO_VALID_HOST"
    assert "RamFilter" in failed.fault.message and "65536" in failed.fault.message
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)

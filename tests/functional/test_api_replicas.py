"""``stratus up --apis 3``: every replica serves every call, seeding happened once although the
three started together, a replica killed with SIGKILL is restarted while the others serve, and
the CLI goes to the next replica when the first is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.api.flavors.manager import SEED_FLAVORS
from services.launcher.ports import free_port
from services.launcher.stackfile import StackInfo, stack_path, write_stack
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2, services_pb2
from tests.support.stack import ROOT, Stack, start_stack

ACTIVE = servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh stack (a fresh etcd: nothing seeded yet) whose three apis start at once."""
    s = start_stack(Path(tmp_path_factory.mktemp("replicas")), "--driver", "fake", "--apis", "3")
    yield s
    assert s.stop() == 0, s.log_tail()


def test_every_replica_is_listed_and_answers(replicated: Stack) -> None:
    info = replicated.reload()
    assert len(replicated.apis) == 3 and len(set(replicated.apis)) == 3
    assert replicated.api == replicated.apis[0] == info["api"]
    registered = {s["host"]: s["endpoint"] for s in info["services"] if s["binary"] == "api"}
    assert registered == {f"api-{i}": replicated.apis[i - 1] for i in (1, 2, 3)}
    for replica in replicated.replicas:
        reply = replica.services.ListServices(services_pb2.ListServicesRequest(binary="api"), metadata=replica.md())
        assert sorted(s.host for s in reply.services) == ["api-1", "api-2", "api-3"]


def test_replicas_starting_together_seeded_one_tiny_and_one_of_each_flavor(replicated: Stack) -> None:
    images = replicated.images.ListImages(images_pb2.ListImagesRequest(), metadata=replicated.md()).images
    assert [i.name for i in images if not i.owner_project_id] == ["tiny"]
    flavors = replicated.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=replicated.md()).flavors
    assert sorted(f.name for f in flavors) == sorted(name for name, *_ in SEED_FLAVORS)


def test_a_server_made_through_one_replica_is_seen_and_deleted_through_another(replicated: Stack) -> None:
    one, two = replicated.replica(0), replicated.replica(1)
    listing = two.servers.ListServers(servers_pb2.ListServersRequest(), metadata=two.md("demo"))
    name = f"across-{uuid.uuid4().hex[:6]}"
    req = servers_pb2.CreateServerRequest(server=servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny"))
    server_id = one.servers.CreateServer(req, metadata=one.md("demo")).id
    two.wait_for_server(server_id, {"ACTIVE"}, who="demo")
    listed = two.servers.ListServers(servers_pb2.ListServersRequest(), metadata=two.md("demo")).servers
    assert server_id in {s.id for s in listed}
    events = two.servers.WatchServers(
        servers_pb2.WatchServersRequest(revision=listing.revision), metadata=two.md("demo"), timeout=60
    )
    for event in events:  # replayed from the listing's revision: the build's changes as they happened
        if event.server.id == server_id and event.server.status == ACTIVE:
            events.cancel()
            break
    two.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=two.md("demo"))
    one.wait_gone(server_id)


def test_a_killed_replica_is_restarted_while_the_others_serve(replicated: Stack) -> None:
    before = {s["host"]: s for s in replicated.reload()["services"]}
    victim = before["api-1"]
    os.kill(victim["pid"], signal.SIGKILL)
    two = replicated.replica(1)
    flavors = two.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=two.md())
    assert flavors.flavors  # api-2 serves while api-1 is down
    deadline = time.monotonic() + 60
    while True:
        now = {s["host"]: s for s in replicated.reload()["services"]}
        if now["api-1"]["pid"] != victim["pid"]:
            try:
                replicated.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=replicated.md())
                break
            except grpc.RpcError as exc:  # restarted, not serving yet
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
        assert time.monotonic() < deadline, replicated.log_tail()
        time.sleep(0.2)
    assert now["api-1"]["endpoint"] == victim["endpoint"]  # back on its own port
    assert replicated.reload()["apis"][0] == victim["endpoint"]


def test_the_cli_uses_the_next_replica_when_the_first_is_down(replicated: Stack, tmp_path: Path) -> None:
    info = replicated.reload()
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: as an api that is down
    write_stack(stack_path(tmp_path), StackInfo.from_json({**info, "api": dead, "apis": [dead, *replicated.apis]}))
    cmd = [sys.executable, "-m", "services.cli.main", "flavor", "list", "-f", "json", "--state-dir", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode()
    assert "m1.tiny" in {f["name"] for f in json.loads(out.stdout)}

"""Quotas on a whole stack with roomy fake hosts and two api replicas: 200 concurrent creates of one
project, spread over both replicas (so no lock inside one process can serialise them: only the
compare on the project's usage in etcd does), end exactly at its limit, the others refused with
RESOURCE_EXHAUSTED and a QuotaFailure naming the resource; deletes give the usage back; images and
server group members are bounded too."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stratus.v1 import flavors_pb2, images_pb2, quotas_pb2, servergroups_pb2, servers_pb2
from tests.support.stack import ROOT, Stack, start_stack

CONCURRENT = 200
HOST_SIZE = "vcpus=512,ram_mb=1048576,disk_gb=100000"
Q = quotas_pb2.QuotaSet


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(Path(tmp_path_factory.mktemp("quotas")), "--driver", "fake", "--computes", "2",
                        "--fake-host", HOST_SIZE, "--apis", "2")  # fmt: skip
    yield stack
    assert stack.stop() == 0, stack.log_tail()


def set_quota(stack: Stack, **limits: int) -> quotas_pb2.UpdateQuotaSetResponse:
    request = quotas_pb2.UpdateQuotaSetRequest(project_id="demo", quota_set=Q(**limits))
    reply: quotas_pb2.UpdateQuotaSetResponse = stack.quotas.UpdateQuotaSet(request, metadata=stack.md())
    return reply


def usage(stack: Stack) -> quotas_pb2.QuotaSet:
    reply: quotas_pb2.GetQuotaSetResponse = stack.quotas.GetQuotaSet(quotas_pb2.GetQuotaSetRequest(),
                                                                     metadata=stack.md("demo"))  # fmt: skip
    return reply.usage


def quota_failure(err: grpc.RpcError) -> error_details_pb2.QuotaFailure:
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    failure = error_details_pb2.QuotaFailure()
    assert any(detail.Unpack(failure) for detail in status.details), status
    return failure


def create_many(stack: Stack, flavor_id: str, count: int, group_id: str = "") -> tuple[list[str], list[str]]:
    """``count`` concurrent creates of project demo, alternating between the api replicas: the ids
    made, and the resource each refusal named."""
    replicas = stack.replicas
    assert len(replicas) == 2

    def create(i: int) -> tuple[str, str]:
        spec = servers_pb2.Server(name=f"q-{i}", flavor_id=flavor_id, image_id="tiny", server_group_id=group_id)
        api = replicas[i % 2].servers
        try:
            server = api.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md("demo"))
        except grpc.RpcError as err:
            violation = quota_failure(err).violations[0]
            assert violation.subject == "project:demo", violation
            return "", violation.quota_metric
        return server.id, ""

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(create, range(count)))
    return [i for i, _ in results if i], [r for _, r in results if r]


def delete_all(stack: Stack, ids: list[str]) -> None:
    for server_id in ids:
        stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=stack.md("demo"))
    for server_id in ids:
        stack.wait_gone(server_id)


def flavor(stack: Stack, vcpus: int) -> str:
    spec = flavors_pb2.Flavor(name=f"q{vcpus}-{uuid.uuid4().hex[:6]}", vcpus=vcpus, ram_mb=64, disk_gb=1)
    return str(stack.flavors.CreateFlavor(flavors_pb2.CreateFlavorRequest(flavor=spec), metadata=stack.md()).id)


def test_concurrent_creates_stop_at_the_instances_limit(roomy: Stack) -> None:
    set_quota(roomy, instances=7, cores=-1, ram_mb=-1)
    made, refused = create_many(roomy, "m1.tiny", CONCURRENT)
    assert len(made) == 7 and refused == ["instances"] * (CONCURRENT - 7)
    assert (usage(roomy).instances, usage(roomy).cores) == (7, 7)
    for server_id in made:
        roomy.wait_for_server(server_id, {"ACTIVE"}, who="demo")
    delete_all(roomy, made)
    after = usage(roomy)
    assert (after.instances, after.cores, after.ram_mb) == (0, 0, 0)


def test_concurrent_creates_stop_at_the_cores_limit(roomy: Stack) -> None:
    set_quota(roomy, instances=-1, cores=9, ram_mb=-1)
    made, refused = create_many(roomy, flavor(roomy, 2), CONCURRENT)
    assert len(made) == 4 and refused == ["cores"] * (CONCURRENT - 4)
    assert usage(roomy).cores == 8
    delete_all(roomy, made)
    assert (usage(roomy).instances, usage(roomy).cores) == (0, 0)


def test_server_group_members_are_bounded(roomy: Stack) -> None:
    set_quota(roomy, instances=-1, cores=-1, ram_mb=-1, server_group_members=3)
    policy = servergroups_pb2.ServerGroupPolicy.SERVER_GROUP_POLICY_SOFT_AFFINITY
    spec = servergroups_pb2.ServerGroup(name="qg", policy=policy)
    request = servergroups_pb2.CreateServerGroupRequest(server_group=spec)
    group = roomy.server_groups.CreateServerGroup(request, metadata=roomy.md("demo"))
    made, refused = create_many(roomy, "m1.tiny", 20, group.id)
    assert len(made) == 3 and refused == ["server_group_members"] * 17
    assert (usage(roomy).server_group_members, usage(roomy).server_groups) == (3, 1)
    delete_all(roomy, made)
    roomy.server_groups.DeleteServerGroup(servergroups_pb2.DeleteServerGroupRequest(id=group.id),
                                          metadata=roomy.md("demo"))  # fmt: skip
    assert (usage(roomy).server_group_members, usage(roomy).server_groups) == (0, 0)


def test_images_are_counted(roomy: Stack) -> None:
    set_quota(roomy, images=2)

    def upload(name: str) -> images_pb2.Image:
        meta = images_pb2.Image(name=name, disk_format="raw", container_format="bare")
        stream = iter([images_pb2.UploadImageRequest(metadata=meta), images_pb2.UploadImageRequest(chunk=b"x" * 1000)])
        image: images_pb2.Image = roomy.images.UploadImage(stream, metadata=roomy.md("demo"))
        return image

    kept = [upload("qa"), upload("qb")]
    with pytest.raises(grpc.RpcError) as info:
        upload("qc")
    assert quota_failure(info.value).violations[0].quota_metric == "images"
    assert (usage(roomy).images, usage(roomy).image_bytes) == (2, 2000)
    for image in kept:
        roomy.images.DeleteImage(images_pb2.DeleteImageRequest(id=image.id), metadata=roomy.md("demo"))
    assert (usage(roomy).images, usage(roomy).image_bytes) == (0, 0)


def test_quotas_are_read_by_their_project_and_set_by_admins(roomy: Stack) -> None:
    own = roomy.quotas.GetQuotaSet(quotas_pb2.GetQuotaSetRequest(), metadata=roomy.md("demo"))
    assert own.project_id == "demo" and own.limits.keypairs == 100
    for call, request in (
        (roomy.quotas.GetQuotaSet, quotas_pb2.GetQuotaSetRequest(project_id="admin")),
        (roomy.quotas.UpdateQuotaSet, quotas_pb2.UpdateQuotaSetRequest(project_id="demo", quota_set=Q(instances=99))),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(request, metadata=roomy.md("demo"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as bad:
        set_quota(roomy, instances=-5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        roomy.quotas.GetQuotaSet(quotas_pb2.GetQuotaSetRequest(project_id="demo"), metadata=roomy.md()).limits.keypairs
        == 100
    )


def test_the_cli_shows_and_sets_quotas(roomy: Stack) -> None:
    def stratus(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "services.cli.main", "quota", *args, "--state-dir", str(roomy.state_dir)]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    out = stratus("set", "demo", "--keypairs", "7", "--server-groups", "-1", "-f", "json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["project_id"], shown["limits"]["keypairs"], shown["limits"]["server_groups"]) == ("demo", "7", "-1")
    table = stratus("show", "demo")
    assert table.returncode == 0 and "0 of 7" in table.stdout and "unlimited" in table.stdout, table.stdout
    refused = stratus("set", "demo")
    assert refused.returncode == 2 and "--instances" in refused.stderr
    own = stratus("show", "--token", roomy.info["demo_token"], "-f", "json")
    assert json.loads(own.stdout)["project_id"] == "demo"

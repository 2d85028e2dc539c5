"""What a new stack offers: reflection and health for grpcurl, seeds, services and hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc

from stratus.v1 import flavors_pb2, hosts_pb2, images_pb2, services_pb2
from tests.support.stack import Stack

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl(stack: Stack, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    auth = ["-H", f"authorization: Bearer {token}"] if token else []
    return subprocess.run(
        [GRPCURL, *stack.grpcurl_args(), *auth, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_reflection_lists_the_public_services(stack: Stack) -> None:
    out = grpcurl(stack, stack.api, "list")
    assert out.returncode == 0, out.stderr
    for name in ("stratus.v1.Servers", "stratus.v1.Flavors", "stratus.v1.Images", "stratus.v1.Services",
                 "stratus.v1.Hosts", "grpc.health.v1.Health"):  # fmt: skip
        assert name in out.stdout.split()


def test_reflection_describes_services_methods_and_messages(stack: Stack) -> None:
    for symbol, kind in (("stratus.v1.Servers", "service"), ("stratus.v1.Servers.CreateServer", "method"),
                         ("stratus.v1.Server", "message")):  # fmt: skip
        out = grpcurl(stack, stack.api, "describe", symbol)
        assert out.returncode == 0 and f"is a {kind}" in out.stdout, out.stderr


def test_health_serving_on_every_process(stack: Stack) -> None:
    endpoints = [(stack.api, None)] + [(s["endpoint"], "api") for s in stack.info["services"] if s["binary"] != "api"]
    for endpoint, role in endpoints:  # an internal port answers a caller with one of the stack's certificates
        with stack.channel_to(endpoint, role) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, endpoint


def test_grpcurl_reads_seeded_flavors_with_the_admin_token(stack: Stack) -> None:
    out = grpcurl(stack, "-d", "{}", stack.api, "stratus.v1.Flavors/ListFlavors", token=stack.info["token"])
    assert out.returncode == 0, out.stderr
    names = {f["name"] for f in json.loads(out.stdout)["flavors"]}
    assert {"m1.tiny", "m1.small", "m1.medium"} <= names


def test_seeded_flavor_and_image(stack: Stack) -> None:
    tiny = stack.flavors.GetFlavor(flavors_pb2.GetFlavorRequest(id="m1.tiny"), metadata=stack.md())
    assert tiny.vcpus == 1 and tiny.ram_mb >= 64 and tiny.disk_gb == 1
    images = stack.images.ListImages(images_pb2.ListImagesRequest(), metadata=stack.md("demo")).images
    image = next(i for i in images if i.name == "tiny")
    assert image.status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE
    assert image.size_bytes > 0 and len(image.checksum) == 64


def test_services_are_all_up(stack: Stack) -> None:
    reply = stack.services.ListServices(services_pb2.ListServicesRequest(), metadata=stack.md())
    seen = {(s.binary, s.host): s for s in reply.services}
    for binary, host in [("api", "api-1"), ("scheduler", "scheduler-1"), ("servicegroup", "servicegroup-1"),
                         ("compute", "compute-1"), ("compute", "compute-2")]:  # fmt: skip
        service = seen[(binary, host)]
        assert service.state == services_pb2.ServiceState.SERVICE_STATE_UP
        assert service.status == services_pb2.ServiceStatus.SERVICE_STATUS_ENABLED
        assert service.endpoint and service.last_seen.seconds > 0


def test_hosts_report_their_size(stack: Stack) -> None:
    hosts = stack.hosts.ListHosts(hosts_pb2.ListHostsRequest(), metadata=stack.md()).hosts
    by_name = {h.host: h for h in hosts}
    assert set(by_name) >= {"compute-1", "compute-2"}
    host = by_name["compute-1"]
    assert host.state == services_pb2.ServiceState.SERVICE_STATE_UP
    assert (host.vcpus, host.ram_mb, host.disk_gb) == (8, 8192, 100)
    assert host.hypervisor_type == "fake"
    one = stack.hosts.GetHost(hosts_pb2.GetHostRequest(host="compute-2"), metadata=stack.md())
    assert one.host == "compute-2"

"""``stratus up`` is TLS by default (``--tls`` is still accepted): the api over TLS (grpcurl with
the CA, the CLI through stack.json), plaintext refused, internal ports refusing callers without the
stack's client certificate, and a server built, snapshotted and listed through every internal
mutual-TLS path."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.core.tls import TlsFiles, channel_credentials
from stratus.v1 import flavors_pb2, flavors_pb2_grpc, images_pb2, servers_pb2, services_pb2
from tests.support.stack import ROOT, Stack, start_stack

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Two api replicas: the computes read and write image bytes through either, over mutual TLS.
    s = start_stack(Path(tmp_path_factory.mktemp("tls-stack")), "--driver", "fake", "--tls", "--apis", "2")
    yield s
    assert s.stop() == 0, s.log_tail()


def ca_of(stack: Stack) -> Path:
    return Path(stack.info["ca_cert"])


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False)


def endpoint_of(stack: Stack, binary: str) -> str:
    return str(next(s["endpoint"] for s in stack.info["services"] if s["binary"] == binary))


def health(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    finally:
        channel.close()
    return grpc.StatusCode.OK


def test_every_api_replica_serves_the_public_certificate(tls_stack: Stack) -> None:
    assert len(tls_stack.apis) == 2
    for replica in tls_stack.replicas:
        flavors = replica.flavors.ListFlavors(flavors_pb2.ListFlavorsRequest(), metadata=replica.md()).flavors
        assert "m1.tiny" in {f.name for f in flavors}


def test_stack_json_names_the_ca_in_the_state_dir(tls_stack: Stack) -> None:
    assert ca_of(tls_stack) == tls_stack.state_dir / "tls" / "ca.pem"
    assert stat.S_IMODE((tls_stack.state_dir / "tls" / "ca-key.pem").stat().st_mode) == 0o600


def test_grpcurl_with_the_ca_lists_flavors(tls_stack: Stack) -> None:
    out = grpcurl("-cacert", str(ca_of(tls_stack)), "-H", f"authorization: Bearer {tls_stack.info['token']}",
                  "-d", "{}", tls_stack.api, "stratus.v1.Flavors/ListFlavors")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "m1.tiny" in out.stdout


def test_plaintext_to_the_tls_api_fails(tls_stack: Stack) -> None:
    out = grpcurl("-plaintext", "-max-time", "5", "-d", "{}", tls_stack.api, "stratus.v1.Flavors/ListFlavors")
    assert out.returncode != 0 and "m1.tiny" not in out.stdout
    with grpc.insecure_channel(tls_stack.api) as channel, pytest.raises(grpc.RpcError) as err:
        flavors_pb2_grpc.FlavorsStub(channel).ListFlavors(
            flavors_pb2.ListFlavorsRequest(), metadata=tls_stack.md(), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_cli_finds_the_ca_in_stack_json(tls_stack: Stack) -> None:
    cmd = [sys.executable, "-m", "services.cli.main", "flavor", "list", "--state-dir", str(tls_stack.state_dir)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "m1.tiny" in out.stdout


def test_the_cli_takes_the_ca_as_an_option_without_a_stack_json(tls_stack: Stack, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "services.cli.main"]
    args = ["flavor", "list", "--api", tls_stack.api, "--token", tls_stack.info["token"], "--state-dir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "STRATUS_CA_CERT"}
    out = subprocess.run([*base, "--ca-cert", str(ca_of(tls_stack)), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "m1.tiny" in out.stdout
    plain = subprocess.run([*base, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode != 0 and "m1.tiny" not in plain.stdout


def test_an_internal_port_refuses_callers_without_the_stacks_client_certificate(tls_stack: Stack) -> None:
    scheduler = endpoint_of(tls_stack, "scheduler")
    tls_dir = tls_stack.state_dir / "tls"
    assert health(grpc.secure_channel(scheduler, channel_credentials(ca_of(tls_stack)))) == grpc.StatusCode.UNAVAILABLE
    assert health(grpc.insecure_channel(scheduler)) == grpc.StatusCode.UNAVAILABLE
    out = grpcurl("-cacert", str(ca_of(tls_stack)), "-max-time", "5", scheduler, "list")
    assert out.returncode != 0
    # The same port takes a caller that shows one of the stack's role certificates.
    identity = TlsFiles(ca_of(tls_stack), tls_dir / "role-api.pem", tls_dir / "role-api-key.pem")
    peer = grpc.secure_channel(scheduler, channel_credentials(identity.ca, identity))
    assert health(peer) == grpc.StatusCode.OK


def test_a_server_is_built_snapshotted_and_services_listed_over_mutual_tls(tls_stack: Stack) -> None:
    """api -> scheduler and compute (build), compute -> api's ImageStore (snapshot), api -> servicegroup."""
    md = tls_stack.md()
    server = servers_pb2.Server(name="tls-vm", flavor_id="m1.tiny", image_id="tiny")
    created = tls_stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=server), metadata=md)
    active = tls_stack.wait_for_server(created.id, {"ACTIVE"})
    assert active.host == "compute-1"
    image = tls_stack.servers.SnapshotServer(
        servers_pb2.SnapshotServerRequest(id=created.id, image_name="tls-snap"), metadata=md
    )
    deadline = time.monotonic() + 60
    while True:
        got = tls_stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=md)
        if got.status == images_pb2.ImageStatus.IMAGE_STATUS_ACTIVE:
            break
        assert got.status != images_pb2.ImageStatus.IMAGE_STATUS_KILLED and time.monotonic() < deadline, (
            tls_stack.log_tail()
        )
        time.sleep(0.1)
    services = tls_stack.services.ListServices(services_pb2.ListServicesRequest(), metadata=md).services
    assert {s.binary for s in services} >= {"api", "scheduler", "compute"}
    tls_stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=created.id), metadata=md)
    tls_stack.wait_gone(created.id)

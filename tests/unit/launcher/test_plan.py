"""The processes of a stack, their command lines, and how registrations update them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

from services.core.etcd import EtcdTls
from services.core.tls import TlsFiles
from services.launcher.etcd_proc import EtcdPorts, etcd_argv
from services.launcher.options import StackOptions
from services.launcher.plan import TlsPlan, api_ports, plan_services, service_argv, service_hosts
from services.launcher.registry import not_serving, take_registrations
from services.launcher.summary import summary_lines
from services.launcher.supervised import Supervised, port_of
from stratus.state.v1 import state_pb2

OPTS = StackOptions(state_dir=Path("/s"), computes=2, schedulers=2, fake_host="vcpus=2,ram_mb=512,disk_gb=5")
ETCD = ("http://127.0.0.1:2379",)


def test_hosts_are_numbered_in_start_order() -> None:
    assert service_hosts(OPTS) == [
        ("servicegroup", "servicegroup-1"),
        ("scheduler", "scheduler-1"),
        ("scheduler", "scheduler-2"),
        ("compute", "compute-1"),
        ("compute", "compute-2"),
        ("api", "api-1"),
    ]


def test_a_compute_gets_the_driver_size_etcd_and_its_port() -> None:
    argv = service_argv("compute", "compute-2", OPTS, ETCD, 0)
    assert argv[:4] == [sys.executable, "-m", "services.cli.main", "compute"]
    flags = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert flags == {
        "--host": "compute-2",
        "--state-dir": "/s",
        "--etcd": "http://127.0.0.1:2379",
        "--port": "0",
        "--driver": "fake",
        "--fake-host": "vcpus=2,ram_mb=512,disk_gb=5",
    }


def test_only_computes_get_driver_flags_and_lease_ttl_passes_when_given() -> None:
    opts = StackOptions(state_dir=Path("/s"), lease_ttl=3)
    argv = service_argv("scheduler", "scheduler-1", opts, ETCD, 0)
    assert "--driver" not in argv
    assert argv[argv.index("--lease-ttl") + 1] == "3"


def test_the_api_starts_on_the_api_port_and_a_restart_keeps_the_registered_port() -> None:
    services = {s.host: s for s in plan_services(StackOptions(state_dir=Path("/s"), api_port=8774), ETCD)}
    api = services["api-1"]
    assert api.argv(api.port)[-2:] == ["--port", "8774"]
    compute = services["compute-1"]
    assert compute.port == 0
    compute.registered("127.0.0.1:40123", compute.pid)
    assert compute.argv(compute.port)[compute.argv(compute.port).index("--port") + 1] == "40123"


class RunningProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        return None


def fake_service(host: str, pid: int) -> Supervised:
    service = Supervised("compute", host, lambda port: [], Path("/dev/null"))
    service.proc = cast("subprocess.Popen[bytes]", RunningProc(pid))
    return service


def test_registrations_count_only_for_the_current_pid() -> None:
    one, two = fake_service("compute-1", 100), fake_service("compute-2", 200)
    records = {
        ("compute", "compute-1"): state_pb2.ServiceRecord(endpoint="127.0.0.1:1", pid=100),
        ("compute", "compute-2"): state_pb2.ServiceRecord(endpoint="127.0.0.1:2", pid=999),  # a previous run's
    }
    assert take_registrations(records, [one, two]) is True
    assert not_serving([one, two]) == [two]
    assert one.entry().endpoint == "127.0.0.1:1" and one.port == 1
    assert take_registrations(records, [one, two]) is False  # nothing moved


def test_port_of_an_endpoint() -> None:
    assert port_of("127.0.0.1:4242") == 4242
    assert port_of("[::1]:80") == 80
    assert port_of("nohost") == 0


def test_etcd_runs_on_loopback_with_fast_elections() -> None:
    argv = etcd_argv("/usr/bin/etcd", Path("/s/etcd"), EtcdPorts(client=1111, peer=2222))
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--data-dir"] == "/s/etcd"
    assert flags["--listen-client-urls"] == "http://127.0.0.1:1111"
    assert flags["--initial-cluster"] == "stratus=http://127.0.0.1:2222"
    assert (flags["--heartbeat-interval"], flags["--election-timeout"]) == ("50", "500")
    assert (flags["--auto-compaction-mode"], flags["--auto-compaction-retention"]) == ("periodic", "1h")


def test_the_summary_names_the_api_and_how_to_reach_a_non_default_stack() -> None:
    from services.launcher.stackfile import StackInfo

    info = StackInfo("127.0.0.1:5555", list(ETCD), "t", "d", "/s")
    text = "\n".join(summary_lines(info, Path("/s/logs"), local_etcd=True))
    assert "127.0.0.1:5555" in text
    assert "export STRATUS_STATE_DIR=/s" in text


def sets_of(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--set")


def tls_plan(tls_dir: Path = Path("/s/tls")) -> TlsPlan:
    roles = {role: TlsFiles(tls_dir / "ca.pem", tls_dir / f"role-{role}.pem", tls_dir / f"role-{role}-key.pem")
             for role in ("api", "scheduler", "compute", "servicegroup", "launcher")}  # fmt: skip
    return TlsPlan(roles, TlsFiles(tls_dir / "ca.pem", tls_dir / "api.pem", tls_dir / "api-key.pem"))


def test_each_process_shows_its_roles_identity_to_peers_and_etcd_and_the_api_its_public_certificate() -> None:
    services = {s.host: s for s in plan_services(OPTS, ETCD, tls_plan())}
    for host, role in (("servicegroup-1", "servicegroup"), ("scheduler-1", "scheduler"), ("compute-2", "compute")):
        cert, key = f"/s/tls/role-{role}.pem", f"/s/tls/role-{role}-key.pem"
        assert sets_of(services[host].argv(0)) == {
            "tls_ca": "/s/tls/ca.pem", "tls_cert": cert, "tls_key": key,
            "etcd_ca": "/s/tls/ca.pem", "etcd_cert": cert, "etcd_key": key,
        }  # fmt: skip
    api = sets_of(services["api-1"].argv(0))
    assert (api["tls_cert"], api["etcd_cert"]) == ("/s/tls/role-api.pem", "/s/tls/role-api.pem")
    assert (api["tls_public_cert"], api["tls_public_key"]) == ("/s/tls/api.pem", "/s/tls/api-key.pem")
    assert sets_of(plan_services(OPTS, ETCD)[0].argv(0)) == {}  # --insecure: plaintext


def test_etcd_client_tls_reaches_every_process() -> None:
    external = EtcdTls(Path("/e/ca.pem"), Path("/e/c.pem"), Path("/e/k.pem"))
    opts = StackOptions(state_dir=Path("/s"), etcd=("https://10.0.0.1:2379",), etcd_tls=external)
    assert sets_of(service_argv("compute", "compute-1", opts, ("https://10.0.0.1:2379",), 0)) == {
        "etcd_ca": "/e/ca.pem", "etcd_cert": "/e/c.pem", "etcd_key": "/e/k.pem",
    }  # fmt: skip
    with_ca = sets_of(service_argv("compute", "compute-1", opts, ("https://10.0.0.1:2379",), 0, tls_plan()))
    assert with_ca["etcd_cert"] == "/e/c.pem" and with_ca["tls_cert"] == "/s/tls/role-compute.pem"


def test_the_summary_names_the_ca_of_a_tls_stack() -> None:
    from services.launcher.stackfile import StackInfo

    info = StackInfo("127.0.0.1:5555", list(ETCD), "t", "d", "/s", ca_cert="/s/tls/ca.pem")
    text = "\n".join(summary_lines(info, Path("/s/logs"), local_etcd=True))
    assert "127.0.0.1:5555 (TLS)" in text and "/s/tls/ca.pem" in text


def test_api_replicas_are_numbered_and_take_consecutive_ports_from_the_api_port() -> None:
    opts = StackOptions(state_dir=Path("/s"), apis=3, api_port=9000)
    assert [h for h in service_hosts(opts) if h[0] == "api"] == [("api", "api-1"), ("api", "api-2"), ("api", "api-3")]
    assert api_ports(opts) == [9000, 9001, 9002]
    assert api_ports(StackOptions(state_dir=Path("/s"), apis=3, api_port=0)) == [0, 0, 0]
    services = {s.host: s for s in plan_services(opts, ETCD)}
    for i, host in enumerate(("api-1", "api-2", "api-3")):
        argv = services[host].argv(services[host].port)
        assert argv[argv.index("--host") + 1] == host
        assert argv[argv.index("--port") + 1] == str(9000 + i)


def test_every_api_replica_serves_the_public_certificate() -> None:
    opts = StackOptions(state_dir=Path("/s"), apis=2)
    apis = [s for s in plan_services(opts, ETCD, tls_plan()) if s.binary == "api"]
    assert len(apis) == 2
    for api in apis:
        assert sets_of(api.argv(0))["tls_public_cert"] == "/s/tls/api.pem"


def test_the_summary_lists_every_api_replica() -> None:
    from services.launcher.stackfile import StackInfo

    info = StackInfo("127.0.0.1:5555", list(ETCD), "t", "d", "/s", apis=["127.0.0.1:5555", "127.0.0.1:5556"])
    lines = summary_lines(info, Path("/s/logs"), local_etcd=True)
    assert "  api-1      127.0.0.1:5555" in lines and "  api-2      127.0.0.1:5556" in lines
    single = summary_lines(StackInfo("127.0.0.1:5555", list(ETCD), "t", "d", "/s"), Path("/s/logs"), True)
    assert "  api        127.0.0.1:5555" in single

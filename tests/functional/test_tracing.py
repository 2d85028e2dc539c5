"""One CreateServer trace across api, scheduler and compute, exported over OTLP to a receiver
that this test runs itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from stratus.v1 import servers_pb2
from tests.support.etcd_server import free_port
from tests.support.stack import Stack, start_stack


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, bytes]] = []  # (service.name, span name, trace id)

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: object) -> object:
        for rs in request.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                self.spans.extend((service, span.name, span.trace_id) for span in ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Stack, Receiver]]:
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    stack = start_stack(tmp_path / "traced", "--driver", "fake", "--computes", "1", env=env)
    yield stack, receiver
    stack.stop()
    server.stop(None)


def test_create_server_is_one_trace_across_three_processes(traced: tuple[Stack, Receiver]) -> None:
    stack, receiver = traced
    req = servers_pb2.CreateServerRequest(
        server=servers_pb2.Server(name="traced", flavor_id="m1.tiny", image_id="tiny")
    )
    server = stack.servers.CreateServer(req, metadata=stack.md())
    stack.wait_for_server(server.id, {"ACTIVE"})
    deadline = time.monotonic() + 20
    while True:
        roots = [t for s, n, t in receiver.spans if s == "stratus-api" and n == "/stratus.v1.Servers/CreateServer"]
        services = {s for s, _, t in receiver.spans if roots and t == roots[-1]}
        if {"stratus-api", "stratus-scheduler", "stratus-compute"} <= services or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert roots, receiver.spans
    names = {(s, n) for s, n, t in receiver.spans if t == roots[-1]}
    assert ("stratus-scheduler", "/stratus.scheduler.v1.Scheduler/SelectDestinations") in names
    assert ("stratus-scheduler", "scheduler.claim") in names
    assert ("stratus-compute", "/stratus.compute.v1.Compute/BuildInstance") in names

"""OpenTelemetry tracing and structured logs for every process.

Configured by the standard variables: ``OTEL_SERVICE_NAME`` (default ``stratus-<binary>``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``, ``none``), ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` and
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` (``grpc`` or ``http/protobuf``). With no exporter and no
endpoint set, spans are made (so logs carry trace ids) but not exported. Metrics: metrics_export.py.
Call ``setup_tracing`` before any gRPC server or channel is created; the gRPC interceptors it
installs carry the trace context across every hop. etcd's own calls are not traced.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
from opentelemetry.instrumentation.grpc import filters as grpc_filters
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from services.core import otel_env
from services.core.metrics_export import setup_metrics, shutdown_metrics

_provider: TracerProvider | None = None


def _otlp(over_http: bool) -> SpanExporter:
    if over_http:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        return Http()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    return Grpc()


def _exporters() -> list[SpanExporter]:
    return otel_env.exporters("TRACES", _otlp, lambda: ConsoleSpanExporter(out=sys.stderr))


def setup_tracing(binary: str, host: str) -> TracerProvider:
    global _provider
    if _provider is not None:
        return _provider
    attributes: dict[str, Any] = {"service.instance.id": host, "stratus.binary": binary}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = f"stratus-{binary}"
    resource = Resource.create(attributes)
    setup_metrics(resource)
    provider = TracerProvider(resource=resource)
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    not_etcd = grpc_filters.negate(grpc_filters.service_prefix("etcdserverpb"))
    GrpcAioInstrumentorClient(filter_=not_etcd).instrument()
    quiet = grpc_filters.negate(
        grpc_filters.any_of(grpc_filters.health_check(), grpc_filters.service_prefix("grpc.reflection"))
    )
    GrpcAioInstrumentorServer(filter_=quiet).instrument()
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    """Flushes buffered spans and metrics; call on SIGTERM before exiting."""
    if _provider is not None:
        _provider.shutdown()
    shutdown_metrics()


def tracer(name: str = "stratus") -> trace.Tracer:
    return trace.get_tracer(name)


class JsonFormatter(logging.Formatter):
    def __init__(self, binary: str, host: str) -> None:
        super().__init__()
        self.binary = binary
        self.host = host

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.binary,
            "host": self.host,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = f"{span.trace_id:032x}"
            out["span_id"] = f"{span.span_id:016x}"
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class TextFormatter(logging.Formatter):
    def __init__(self, binary: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {binary} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        span = trace.get_current_span().get_span_context()
        return f"{line} trace_id={span.trace_id:032x}" if span.is_valid else line


def setup_logging(binary: str, host: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(binary, host) if fmt == "json" else TextFormatter(binary))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

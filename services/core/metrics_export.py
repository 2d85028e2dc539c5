"""OpenTelemetry metrics for every process (loop restarts, claim audit repairs, ...), exported as
the standard variables say: ``OTEL_METRICS_EXPORTER`` (``otlp``, ``console``, ``none``),
``OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT`` and ``OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL``. With no
exporter and no endpoint set, instruments count in-process only. Instruments made before
``setup_metrics`` (module level) bind to its provider when it is set."""

from __future__ import annotations

import sys

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from services.core import otel_env

_provider: MeterProvider | None = None


def _otlp(over_http: bool) -> MetricExporter:
    if over_http:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

        return Http()
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

    return Grpc()


def _exporters() -> list[MetricExporter]:
    return otel_env.exporters("METRICS", _otlp, lambda: ConsoleMetricExporter(out=sys.stderr))


def setup_metrics(resource: Resource) -> MeterProvider:
    global _provider
    if _provider is None:
        readers = [PeriodicExportingMetricReader(e) for e in _exporters()]
        _provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(_provider)
    return _provider


def shutdown_metrics() -> None:
    """Exports what is pending; call on SIGTERM before exiting."""
    if _provider is not None:
        _provider.shutdown()

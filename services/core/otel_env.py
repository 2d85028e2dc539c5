"""Which OpenTelemetry exporters the standard variables ask for, per signal (TRACES, METRICS)."""

from __future__ import annotations

import os


def wanted(signal: str) -> list[str]:
    """The exporters ``OTEL_<SIGNAL>_EXPORTER`` names; ``otlp`` when it is unset and an OTLP
    endpoint is (``OTEL_EXPORTER_OTLP_[<SIGNAL>_]ENDPOINT``); none otherwise."""
    names = os.environ.get(f"OTEL_{signal}_EXPORTER", "")
    endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return [n.strip() for n in names.split(",") if n.strip()] or (["otlp"] if endpoint else [])


def otlp_over_http(signal: str) -> bool:
    """True when ``OTEL_EXPORTER_OTLP_[<SIGNAL>_]PROTOCOL`` says http/protobuf (default grpc)."""
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    return protocol.startswith("http")

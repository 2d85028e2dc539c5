"""Which OpenTelemetry exporters the standard variables ask for, per signal (TRACES, METRICS)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

E = TypeVar("E")


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


def exporters(signal: str, otlp: Callable[[bool], E], console: Callable[[], E]) -> list[E]:
    """The exporters ``wanted`` names, made by ``otlp(over_http)`` and ``console()``; ``none`` makes
    none and an unknown name is logged and ignored."""
    out: list[E] = []
    for name in wanted(signal):
        if name == "otlp":
            out.append(otlp(otlp_over_http(signal)))
        elif name == "console":
            out.append(console())
        elif name != "none":
            logging.getLogger(__name__).warning("unknown OTEL_%s_EXPORTER %r ignored", signal, name)
    return out

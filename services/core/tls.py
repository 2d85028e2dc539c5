"""TLS for gRPC: the one place that decides whether a port or a channel is TLS or plaintext.

With no TLS files given, ports and channels are plaintext, as before. A process's settings
(``CommonSettings.internal_tls``/``server_tls``) say which files to use; ``stratus up --tls``
makes them with ``services/launcher/certs.py``. Kept free of ``cryptography`` so the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.core import message_limits


@dataclass(frozen=True)
class TlsFiles:
    """A CA to trust and this side's certificate and key (PEM files)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerTls:
    files: TlsFiles
    require_client_cert: bool  # mutual TLS: callers must show a certificate signed by ``files.ca``


# ---- gRPC: the one place that decides TLS or plaintext ----------------------------------------
def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    pair = [(tls.files.key.read_bytes(), tls.files.cert.read_bytes())]
    if tls.require_client_cert:
        return grpc.ssl_server_credentials(pair, root_certificates=tls.files.ca.read_bytes(), require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def channel_credentials(ca: Path, identity: TlsFiles | None = None) -> grpc.ChannelCredentials:
    """Trusts ``ca``; shows ``identity``'s certificate when given (mutual TLS)."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=identity.key.read_bytes() if identity else None,
        certificate_chain=identity.cert.read_bytes() if identity else None,
    )


def add_port(server: Any, address: str, tls: ServerTls | None) -> int:
    """Listens on ``address``: TLS (mutual when asked) with ``tls``, plaintext without. The bound port."""
    if tls is None:
        return int(server.add_insecure_port(address))
    return int(server.add_secure_port(address, server_credentials(tls)))


def aio_channel(endpoint: str, tls: TlsFiles | None, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to a peer process: mutual TLS with ``tls`` (CA and this process's identity), else plaintext."""
    settings = [*message_limits.options(), *options]
    if tls is None:
        return grpc.aio.insecure_channel(endpoint, options=settings)
    return grpc.aio.secure_channel(endpoint, channel_credentials(tls.ca, tls), options=settings)


def sync_channel(target: str, ca: Path | None) -> grpc.Channel:
    """A client's channel to the public api: TLS trusting ``ca`` when given, else plaintext."""
    if ca is None:
        return grpc.insecure_channel(target, options=message_limits.options())
    return grpc.secure_channel(target, channel_credentials(ca), options=message_limits.options())

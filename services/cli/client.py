"""A sync gRPC session with the api: stubs, the bearer token, and errors turned into exit codes.

Every error is printed here, once, as ``error: ...`` and a hint naming its cause; the command then
exits 1 (2 for a usage error). An api that does not answer is reported within ``CONNECT_TIMEOUT_S``
(a TCP probe first, then a bound on gRPC's own connect and TLS handshake), not after a call's timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import typer

from services.cli import options, output, rpc_errors
from services.cli.target import HOW_TO_START, ForeignApi, NoStack, Target, Unreachable, reachable, resolve_target

if TYPE_CHECKING:
    from stratus.v1 import (
        aggregates_pb2_grpc,
        flavors_pb2_grpc,
        hosts_pb2_grpc,
        images_pb2_grpc,
        keypairs_pb2_grpc,
        placement_pb2_grpc,
        quotas_pb2_grpc,
        servergroups_pb2_grpc,
        servers_pb2_grpc,
        services_pb2_grpc,
    )

CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 2.0  # a port that takes no connection, a TLS handshake that does not finish


class Api:
    """The api's stubs, sharing one channel and the caller's token. Each stub (and its generated
    module) is made on first use: a command imports only the services it calls."""

    def __init__(self, target: Target, channel: grpc.Channel) -> None:
        self.target = target
        self.channel = channel  # for the stubs a command module makes itself (tokens.py)
        self.metadata: list[tuple[str, str]] = [("authorization", f"Bearer {target.token}")] if target.token else []

    @cached_property
    def servers(self) -> servers_pb2_grpc.ServersStub:
        from stratus.v1 import servers_pb2_grpc

        return servers_pb2_grpc.ServersStub(self.channel)

    @cached_property
    def flavors(self) -> flavors_pb2_grpc.FlavorsStub:
        from stratus.v1 import flavors_pb2_grpc

        return flavors_pb2_grpc.FlavorsStub(self.channel)

    @cached_property
    def images(self) -> images_pb2_grpc.ImagesStub:
        from stratus.v1 import images_pb2_grpc

        return images_pb2_grpc.ImagesStub(self.channel)

    @cached_property
    def services(self) -> services_pb2_grpc.ServicesStub:
        from stratus.v1 import services_pb2_grpc

        return services_pb2_grpc.ServicesStub(self.channel)

    @cached_property
    def hosts(self) -> hosts_pb2_grpc.HostsStub:
        from stratus.v1 import hosts_pb2_grpc

        return hosts_pb2_grpc.HostsStub(self.channel)

    @cached_property
    def server_groups(self) -> servergroups_pb2_grpc.ServerGroupsStub:
        from stratus.v1 import servergroups_pb2_grpc

        return servergroups_pb2_grpc.ServerGroupsStub(self.channel)

    @cached_property
    def aggregates(self) -> aggregates_pb2_grpc.AggregatesStub:
        from stratus.v1 import aggregates_pb2_grpc

        return aggregates_pb2_grpc.AggregatesStub(self.channel)

    @cached_property
    def placement(self) -> placement_pb2_grpc.PlacementStub:
        from stratus.v1 import placement_pb2_grpc

        return placement_pb2_grpc.PlacementStub(self.channel)

    @cached_property
    def keypairs(self) -> keypairs_pb2_grpc.KeypairsStub:
        from stratus.v1 import keypairs_pb2_grpc

        return keypairs_pb2_grpc.KeypairsStub(self.channel)

    @cached_property
    def quotas(self) -> quotas_pb2_grpc.QuotasStub:
        from stratus.v1 import quotas_pb2_grpc

        return quotas_pb2_grpc.QuotasStub(self.channel)

    def call(self, method: Any, request: Any, timeout: float | None = CALL_TIMEOUT_S) -> Any:
        """A unary (or client-streaming) call with the token attached."""
        return method(request, metadata=self.metadata, timeout=timeout)


def where(target: Target) -> str:
    return f"the api at {target.api} (from {target.source})"


def unreachable(target: Target) -> list[str]:
    tried = ", ".join((target.api, *target.alternates))
    return [
        f"error: cannot reach the api at {tried} (from {target.source}): "
        f"no connection accepted (waited at most {CONNECT_TIMEOUT_S:g}s)",
        f"hint: is the stack still up? {HOW_TO_START}",
    ]


def error_lines(err: grpc.RpcError, target: Target) -> list[str]:
    """What the user reads of a failed call: the error, one line per bad field, and a hint for the
    cause (the api's reason when it gave one; a connection that failed when it did not)."""
    code = err.code()
    status = rpc_errors.status_of(err)
    details = err.details() or ""
    if rpc_errors.is_transport(code.name, status):  # gRPC's: the api never answered, or went away
        lines = [f"error: UNAVAILABLE: cannot reach {where(target)}: {details}"]
        if target.ca_cert is None:  # it took the TCP connection (reachable): maybe TLS we did not speak
            lines.append("hint: if that api speaks TLS (a stack's does unless started with --insecure), give its CA: "
                         "--ca-cert PEM, or --state-dir of its stack")  # fmt: skip
        return [*lines, f"hint: is the stack still up? {HOW_TO_START}"]
    lines = rpc_errors.describe(code.name, details, status)
    if code == grpc.StatusCode.UNAUTHENTICATED and target.token_source:
        lines.insert(1, f"  the token came from {target.token_source}")
    return lines


def report_rpc_error(err: grpc.RpcError, target: Target) -> None:
    for line in error_lines(err, target):
        output.err(line)


def open_channel(target: Target) -> grpc.Channel:
    """The channel to the target: TLS trusting its CA when it has one, else plaintext. gRPC's connect
    timeout (TCP and TLS handshake) is ``CONNECT_TIMEOUT_S`` instead of its 20 s: a call to an api
    that takes the connection but never answers (a stopped process) fails UNAVAILABLE then."""
    from services.core import message_limits

    settings = [*message_limits.options(), ("grpc.min_reconnect_backoff_ms", int(CONNECT_TIMEOUT_S * 1000))]
    if target.ca_cert is None:
        return grpc.insecure_channel(target.api, options=settings)
    from services.core.tls import channel_credentials

    return grpc.secure_channel(target.api, channel_credentials(target.ca_cert), options=settings)


@contextmanager
def open_api(api: str | None, token: str | None, state_dir: Path | None, ca_cert: Path | None = None) -> Iterator[Api]:
    """Finds the stack, connects (over TLS when it has a CA), and maps failures to messages: exit 2,
    before connecting, when the stack's token would go to another api; exit 1 on any gRPC error.
    What a command does not say comes from the options given before it (``stratus --token T ...``)."""
    given = options.given()
    api, token = api or given.api, token or given.token
    state_dir, ca_cert = state_dir or given.state_dir, ca_cert or given.ca_cert
    try:
        target = reachable(resolve_target(api, token, state_dir, os.environ, ca_cert), CONNECT_TIMEOUT_S)
        channel = open_channel(target)
    except ForeignApi as exc:
        output.err(f"error: {exc}")
        raise typer.Exit(2) from None
    except NoStack as exc:
        output.err(f"error: {exc}")
        raise typer.Exit(1) from None
    except Unreachable as exc:
        for line in unreachable(exc.target):
            output.err(line)
        raise typer.Exit(1) from None
    except OSError as exc:  # the CA file named is not there
        output.err(f"error: cannot read the CA certificate: {exc}")
        raise typer.Exit(1) from None
    try:
        yield Api(target, channel)
    except grpc.RpcError as err:
        report_rpc_error(err, target)
        raise typer.Exit(1) from None
    finally:
        channel.close()

"""A sync gRPC session with the api: stubs, the bearer token, and errors turned into exit codes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import typer

from services.cli import output, rpc_errors
from services.cli.target import HOW_TO_START, ForeignApi, NoStack, Target, reachable, resolve_target
from services.core.tls import sync_channel
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
CONNECT_TIMEOUT_S = 5.0


class Api:
    """The api's stubs, sharing one channel and the caller's token."""

    def __init__(self, target: Target, channel: grpc.Channel) -> None:
        self.target = target
        self.channel = channel  # for the stubs a command module makes itself (tokens.py)
        self.metadata: list[tuple[str, str]] = [("authorization", f"Bearer {target.token}")] if target.token else []
        self.servers = servers_pb2_grpc.ServersStub(channel)
        self.flavors = flavors_pb2_grpc.FlavorsStub(channel)
        self.images = images_pb2_grpc.ImagesStub(channel)
        self.services = services_pb2_grpc.ServicesStub(channel)
        self.hosts = hosts_pb2_grpc.HostsStub(channel)
        self.server_groups = servergroups_pb2_grpc.ServerGroupsStub(channel)
        self.aggregates = aggregates_pb2_grpc.AggregatesStub(channel)
        self.placement = placement_pb2_grpc.PlacementStub(channel)
        self.keypairs = keypairs_pb2_grpc.KeypairsStub(channel)
        self.quotas = quotas_pb2_grpc.QuotasStub(channel)

    def call(self, method: Any, request: Any, timeout: float | None = CALL_TIMEOUT_S) -> Any:
        """A unary (or client-streaming) call with the token attached."""
        return method(request, metadata=self.metadata, timeout=timeout)


def unreachable(target: Target) -> str:
    return f"error: cannot reach the api at {target.api} (from {target.source}); {HOW_TO_START}"


def report_rpc_error(err: grpc.RpcError, target: Target) -> None:
    code = err.code()
    lines = rpc_errors.describe(code.name, err.details() or "", rpc_errors.status_of(err))
    if code == grpc.StatusCode.UNAVAILABLE:
        lines.append(f"the api at {target.api} (from {target.source}) is unavailable; is the stack still up?")
    for line in lines:
        output.err(line)


@contextmanager
def open_api(api: str | None, token: str | None, state_dir: Path | None, ca_cert: Path | None = None) -> Iterator[Api]:
    """Finds the stack, connects (over TLS when it has a CA), and maps failures to messages: exit 2,
    before connecting, when the stack's token would go to another api; exit 1 on any gRPC error."""
    try:
        target = reachable(resolve_target(api, token, state_dir, os.environ, ca_cert), CONNECT_TIMEOUT_S)
        channel = sync_channel(target.api, target.ca_cert)
    except ForeignApi as exc:
        output.err(f"error: {exc}")
        raise typer.Exit(2) from None
    except NoStack as exc:
        output.err(f"error: {exc}")
        raise typer.Exit(1) from None
    except OSError as exc:  # the CA file named is not there
        output.err(f"error: cannot read the CA certificate: {exc}")
        raise typer.Exit(1) from None
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            output.err(unreachable(target))
            raise typer.Exit(1) from None
        yield Api(target, channel)
    except grpc.RpcError as err:
        report_rpc_error(err, target)
        raise typer.Exit(1) from None
    finally:
        channel.close()

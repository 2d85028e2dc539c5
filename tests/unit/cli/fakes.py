"""An api in the test's process for CLI commands run through ``CliRunner``: a fake gRPC channel
whose methods answer from a table, and RPC errors with the trailers the real api sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.cli import client
from services.cli.target import Target

Answer = Callable[[Any], Any]  # the request -> a response (a unary method) or an iterator (a stream)


class RpcFailure(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as grpc raises it: a code, details, and the api's google.rpc.Status in the
    trailers (none: a failure of gRPC's own, e.g. no connection)."""

    def __init__(self, code: grpc.StatusCode, details: str, reason: str = "") -> None:
        self._code, self._details = code, details
        self._trailers: list[tuple[str, Any]] = []
        if reason:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="stratus.dev"))
            status = status_pb2.Status(code=getattr(code_pb2, code.name), message=details, details=[info])
            self._trailers = [("grpc-status-details-bin", status.SerializeToString())]

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> list[tuple[str, Any]]:
        return self._trailers

    def initial_metadata(self) -> list[tuple[str, Any]]:
        return []

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class Stream:
    """What a server-streaming call returns: its answers, then (unless told to fail) its end."""

    def __init__(self, items: list[Any]) -> None:
        self.items = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self.items)

    def cancel(self) -> None:
        self.items = iter(())


class FakeChannel:
    """``answers`` maps a method's name (``ListServers``) to what answers it; a method not there is
    UNIMPLEMENTED. ``calls`` records (method, request, metadata)."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Any, Any]] = []

    def _method(self, path: str, streaming: bool) -> Callable[..., Any]:
        name = path.rsplit("/", 1)[-1]

        def call(request: Any, metadata: Any = None, timeout: float | None = None, **_: Any) -> Any:
            self.calls.append((name, request, metadata))
            answer = self.answers.get(name)
            if answer is None:
                raise RpcFailure(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not in the fake")
            result = answer(request)
            return Stream(list(result)) if streaming else result

        return call

    def unary_unary(self, path: str, *_: Any, **__: Any) -> Callable[..., Any]:
        return self._method(path, streaming=False)

    def unary_stream(self, path: str, *_: Any, **__: Any) -> Callable[..., Any]:
        return self._method(path, streaming=True)

    def stream_unary(self, path: str, *_: Any, **__: Any) -> Callable[..., Any]:
        return self._method(path, streaming=False)

    def stream_stream(self, path: str, *_: Any, **__: Any) -> Callable[..., Any]:
        return self._method(path, streaming=True)

    def close(self) -> None:
        pass


def serve(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Answer]) -> tuple[FakeChannel, list[Target]]:
    """Every command's ``open_api`` talks to a FakeChannel answering with ``answers``; returns it
    and the targets the commands resolved (nothing is probed or dialled)."""
    channel = FakeChannel(answers)
    targets: list[Target] = []

    def open_channel(target: Target) -> FakeChannel:
        targets.append(target)
        return channel

    monkeypatch.setattr(client, "reachable", lambda target, _timeout: target)
    monkeypatch.setattr(client, "open_channel", open_channel)
    for name in ("STRATUS_API", "STRATUS_TOKEN", "STRATUS_CA_CERT", "STRATUS_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return channel, targets


def failing(code: grpc.StatusCode, details: str, reason: str = "") -> Answer:
    def answer(_request: Any) -> Any:
        raise RpcFailure(code, details, reason)

    return answer


NOWHERE = Path("/nonexistent/stratus-state")

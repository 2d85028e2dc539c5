"""The descriptor pool that gRPC reflection reads, able to find methods too.

protobuf's upb pool answers ``FindFileContainingSymbol`` for services and messages but not for a
method (``stratus.v1.Servers.CreateServer``), so ``grpcurl describe <Service>.<Method>`` failed.
This wrapper falls back to the enclosing service when the service has such a method.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool


class MethodAwarePool:
    def __init__(self, pool: Any = None) -> None:
        self._pool = pool or descriptor_pool.Default()

    def FindFileContainingSymbol(self, symbol: str) -> Any:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            service = self._pool.FindServiceByName(service_name)  # KeyError when not a service either
            if method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

"""The filter interface: a filter looks at one host and one request and says why it refuses.

A filter is pure: it reads a ``HostState`` snapshot and the ``RequestSpec`` and returns None when
the host passes, or a reason in the user's terms when it does not ("4096 MB RAM needed, 1024 MB
free"). ``explain`` turns the refusals of one scheduling request into one phrase for the
NO_VALID_HOST message; resource filters say how much the best refused host had.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

Refusal = tuple[HostState, str]


class Filter(ABC):
    name: ClassVar[str]
    # The resource a refusal is about ("ram_mb", "vcpus", ...), reported in the error's metadata.
    resource: ClassVar[str] = ""

    @abstractmethod
    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        """None when the host passes; otherwise why not."""

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        """One phrase for all the hosts this filter refused (at least one)."""
        host, reason = refused[0]
        return f"{host.host}: {reason}"


class ResourceFilter(Filter):
    """Refuses hosts with less free of one resource than the request needs (free = total - claimed)."""

    label: ClassVar[str]  # "MB RAM"
    unit: ClassVar[str]  # "MB"

    @abstractmethod
    def needed(self, request: SchedulingRequest) -> int: ...

    @abstractmethod
    def free(self, host: HostState) -> int: ...

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        needed, free = self.needed(request), self.free(host)
        if needed <= free:
            return None
        return f"{needed} {self.label} needed, {self._amount(free)} free"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        best = max(self.free(host) for host, _ in refused)
        return f"{self.needed(request)} {self.label} needed, at most {self._amount(best)} free"

    def _amount(self, value: int) -> str:
        return f"{max(value, 0)} {self.unit}".rstrip()

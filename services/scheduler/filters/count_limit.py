"""Hosts with fewer than a limit of something counted per host (instances, I/O-heavy tasks): the
limit is a scheduler option, or, in the Aggregate* variants, the smallest number the host's
aggregates set for the same key (others are ignored), else the option."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from services.scheduler.filters.aggregate_utils import aggregate_int
from services.scheduler.filters.base import Filter, Refusal
from services.scheduler.filters.option_values import option_int
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest


class CountLimitFilter(Filter):
    option: ClassVar[str]  # "max_instances_per_host"
    default: ClassVar[int]
    minimum: ClassVar[int] = 0
    on_host: ClassVar[str]  # "instances on the host": what "3 ..." counts, in a refusal
    per_host: ClassVar[str]  # "instances per host": the same, in the explanation of several
    per_aggregate: ClassVar[bool] = False

    def __init__(self, maximum: int | None = None) -> None:
        self.maximum = self.default if maximum is None else maximum

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(option_int(options, cls.option, cls.default, minimum=cls.minimum))

    @abstractmethod
    def count(self, host: HostState) -> int: ...

    def limit(self, host: HostState) -> int:
        return aggregate_int(host, self.option, self.maximum) if self.per_aggregate else self.maximum

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        count, limit = self.count(host), self.limit(host)
        if count < limit:
            return None
        return f"{count} {self.on_host} (max {limit})"

    def explain(self, request: SchedulingRequest, refused: Sequence[Refusal]) -> str:
        least = min(self.count(host) for host, _ in refused)
        limits = ", ".join(map(str, sorted({self.limit(host) for host, _ in refused})))
        return f"at least {least} {self.per_host} (max {limits})"

"""The virt driver interface: what the compute manager asks of a hypervisor.

A driver knows domains by instance id and nothing about etcd records; the manager owns the
records. Power states are ``stratus.v1.PowerState`` values. Every failure is a ``DriverError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What the host offers, as reported in its capabilities record."""

    vcpus: int
    ram_mb: int
    disk_gb: int
    hypervisor_type: str
    hypervisor_version: int
    cpu_model: str


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """What a spawn needs to know about the instance."""

    instance_id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    image_id: str


class DriverError(Exception):
    """The hypervisor refused or failed an operation."""


class InstanceNotFound(DriverError):
    """The hypervisor has no domain for this instance."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"no domain for instance {instance_id}")
        self.instance_id = instance_id


class VirtDriver(ABC):
    @abstractmethod
    async def capabilities(self) -> HostInfo: ...

    @abstractmethod
    async def spawn(self, spec: InstanceSpec) -> None:
        """Defines and starts the domain. On failure it may leave a partial domain behind;
        the caller cleans up with ``destroy``."""

    @abstractmethod
    async def destroy(self, instance_id: str) -> None:
        """Stops and removes the domain and its disks; no error when there is none."""

    @abstractmethod
    async def power_off(self, instance_id: str) -> None: ...

    @abstractmethod
    async def power_on(self, instance_id: str) -> None: ...

    @abstractmethod
    async def reboot(self, instance_id: str, hard: bool) -> None: ...

    @abstractmethod
    async def get_power_state(self, instance_id: str) -> int:
        """The domain's ``PowerState``; ``POWER_STATE_NOSTATE`` when there is no domain."""

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """The instance ids of every domain on the host."""

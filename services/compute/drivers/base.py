"""The virt driver interface: what the compute manager asks of a hypervisor.

A driver knows domains by instance id and nothing about etcd records; the manager owns the
records. Power states are ``stratus.v1.PowerState`` values. Every failure is a ``DriverError``.
Every call to the hypervisor has a timeout; the driver's ``health`` says whether calls answer.
Image bytes reach a driver through the ``ImageService`` it is built with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.compute.drivers.health import HypervisorHealth


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
    """What a spawn (or a resize) needs to know about the instance."""

    instance_id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    image_id: str
    project_id: str = ""
    user_data: bytes = b""
    metadata: Mapping[str, str] = field(default_factory=dict)
    public_keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image as the api describes it: what a cache needs to verify and use the bytes."""

    id: str
    name: str
    checksum: str  # hex sha256
    size_bytes: int
    disk_format: str  # raw, qcow2
    properties: Mapping[str, str] = field(default_factory=dict)


class DriverError(Exception):
    """The hypervisor refused or failed an operation."""


class InstanceNotFound(DriverError):
    """The hypervisor has no domain for this instance."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"no domain for instance {instance_id}")
        self.instance_id = instance_id


class ImageError(DriverError):
    """The image could not be fetched, or its bytes are not what the api says they are."""


class BadImage(ImageError):
    """The image itself is unusable (gone, corrupt, not the format it claims, not its checksum):
    no host could boot it, so a build fails at once instead of trying other hosts."""


class ImageTooBig(BadImage):
    """The image's disk is larger than the flavor's: the request's fault, not the host's nor the
    image's (the api refuses such a create or resize at once; this is an image measured after)."""

    reason = "IMAGE_TOO_BIG"


class ImageService(ABC):
    """Image bytes in and out, through the api (never a user's token)."""

    @abstractmethod
    async def download(self, image_id: str, dest: Path) -> ImageInfo:
        """Writes the image's bytes to ``dest``, verified against its sha256; ImageError otherwise."""

    @abstractmethod
    async def upload(self, image_id: str, src: Path) -> None:
        """Stores ``src`` as the bytes of the image ``image_id`` (SAVING until they are whole)."""


# (instance id, PowerState) from the hypervisor's own events: a guest that powered itself off, crashed...
PowerEventHandler = Callable[[str, int], None]


class VirtDriver(ABC):
    @abstractmethod
    async def capabilities(self) -> HostInfo: ...

    @property
    @abstractmethod
    def health(self) -> HypervisorHealth:
        """Whether the hypervisor answers: every call to it has a timeout, and a call that times
        out makes the health degraded (saying which call) until calls answer in time again."""

    @abstractmethod
    async def check(self) -> None:
        """One cheap call to the hypervisor, so that a hang (and its end) is noticed on a host
        with nothing else to do; DriverError (CallTimeout) when it does not answer."""

    async def start(self, on_power_event: PowerEventHandler, deployment: str = "") -> None:  # noqa: B027
        """Connects to the hypervisor; afterwards power changes the guests make are reported.
        ``deployment`` names the stack (its etcd): a host's domains are those of its name in it."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Releases the hypervisor connection; domains keep running."""

    async def periodic(self) -> None:  # noqa: B027 (optional hook)
        """Housekeeping, run by the compute's reconcile loop (e.g. ageing out cached images)."""

    @abstractmethod
    async def spawn(self, spec: InstanceSpec) -> None:
        """Fetches the image, makes the disks, defines and starts the domain. On failure it
        may leave a partial domain behind; the caller cleans up with ``destroy``."""

    @abstractmethod
    async def destroy(self, instance_id: str) -> None:
        """Stops and removes the domain, its disks, config drive and console log; no error when
        there is none."""

    @abstractmethod
    async def power_off(self, instance_id: str, timeout_s: float) -> None:
        """Asks the guest to shut down (ACPI) and destroys it after ``timeout_s``."""

    @abstractmethod
    async def power_on(self, instance_id: str) -> None: ...

    @abstractmethod
    async def reboot(self, instance_id: str, hard: bool) -> None: ...

    @abstractmethod
    async def pause(self, instance_id: str) -> None: ...

    @abstractmethod
    async def unpause(self, instance_id: str) -> None: ...

    @abstractmethod
    async def suspend(self, instance_id: str) -> None:
        """Saves the guest's memory and stops it; ``resume`` brings it back as it was."""

    @abstractmethod
    async def resume(self, instance_id: str) -> None: ...

    @abstractmethod
    async def resize(self, spec: InstanceSpec) -> None:
        """Restarts the instance with ``spec``'s size, keeping the old disk and definition."""

    @abstractmethod
    async def confirm_resize(self, instance_id: str) -> None:
        """Drops what ``resize`` kept; no error when nothing is kept."""

    @abstractmethod
    async def revert_resize(self, instance_id: str) -> None:
        """Restores the disk and definition ``resize`` kept and starts the instance."""

    @abstractmethod
    async def resize_kept(self, instance_id: str) -> bool:
        """True while ``resize`` has kept an old disk and definition (until confirm or revert)."""

    @abstractmethod
    async def snapshot(self, instance_id: str, image_id: str) -> None:
        """Copies the instance's disk (flattened) into the image ``image_id`` through the ImageService."""

    @abstractmethod
    async def console_output(self, instance_id: str, lines: int) -> str:
        """The last ``lines`` lines of the serial console (0: all that is kept)."""

    @abstractmethod
    async def get_power_state(self, instance_id: str) -> int:
        """The domain's ``PowerState``; ``POWER_STATE_NOSTATE`` when there is no domain."""

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """The instance ids of every domain this host owns."""

    async def has_domain(self, instance_id: str) -> bool:
        """True while this host has a definition of the instance's domain (running or not)."""
        return instance_id in await self.list_instances()

    @abstractmethod
    async def has_disk(self, instance_id: str) -> bool:
        """True while the instance's root disk is on this host, with or without its domain: what
        tells a domain that vanished (an operator's ``virsh undefine``) from an instance whose
        files are gone too."""

    @abstractmethod
    async def redefine(self, spec: InstanceSpec) -> bool:
        """Defines the domain of ``spec`` again, shut off, over the disk that remains when the
        domain vanished, making again what went with it (the config drive), as Nova's hard reboot
        does; True when it did, False when the domain is defined already. InstanceNotFound when
        the disk is gone too: there is nothing to define it over."""

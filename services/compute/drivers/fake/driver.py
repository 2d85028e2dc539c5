"""The fake virt driver, as Nova's: domains in memory, a host of a configured size.

It is the test double for everything above the hypervisor. ``fail_spawn`` makes every spawn
fail the way a real hypervisor often does: the domain is defined but never starts, so the
caller has to clean it up. The console (``console_output``) is how a test sees what a spawn was
given: the server's name and id, and each public key it would have installed.

``hang_file`` simulates a hung hypervisor: while that file exists, every call blocks its thread (as
a libvirt call libvirtd never answers) and times out after ``call_timeout_s``, through the same
``TimedCalls`` as the libvirt driver's, so the host turns degraded; once the file is gone the calls
answer again and the health clears.

A domain can vanish while its disk remains (``undefine``, or ``domains.forget`` on the domains file
from another process: the file is re-read whenever it changed), and ``redefine`` defines it again from
a spec, as the libvirt driver does over the disk left in the instance's directory.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from services.compute.drivers.base import (
    DriverError,
    HostInfo,
    ImageService,
    InstanceNotFound,
    InstanceSpec,
    PowerEventHandler,
    VirtDriver,
)
from services.compute.drivers.fake.domains import FakeDomain, load_disks, load_domains, save_domains
from services.compute.drivers.fake.host import FakeHostSize
from services.compute.drivers.health import HypervisorHealth
from services.compute.drivers.timed_calls import TimedCalls
from stratus.v1 import servers_pb2

P = servers_pb2.PowerState

HYPERVISOR_TYPE = "fake"
HYPERVISOR_VERSION = 1000
CPU_MODEL = "fake-cpu"
FAIL_SPAWN_MESSAGE = "fake driver set to fail spawns"
HANG_POLL_S = 0.02
# Threads for the fake hypervisor's calls (the libvirt driver's default number of workers).
MAX_CALL_THREADS = 8


def _state_word(power_state: int) -> str:
    return P.Name(power_state).removeprefix("POWER_STATE_").lower()  # type: ignore[arg-type]


def _blocked_while(path: Path) -> None:
    """A hung hypervisor: no answer while ``path`` exists (runs on the call's own thread)."""
    while path.exists():
        time.sleep(HANG_POLL_S)


def _booted(spec: InstanceSpec, power_state: int) -> FakeDomain:
    """A domain defined from ``spec``, its console saying what it was given."""
    domain = FakeDomain(spec, power_state)
    domain.console.append(f"fake console of {spec.name} ({spec.instance_id})")
    # What cloud-init would install; a test reads it back through GetServerConsoleOutput.
    domain.console.extend(f"fake authorized key {name}: {key}" for name, key in sorted(spec.public_keys.items()))
    return domain


class FakeDriver(VirtDriver):
    def __init__(
        self,
        size: FakeHostSize,
        images: ImageService | None = None,
        *,
        spawn_delay_s: float = 0.0,
        fail_spawn: bool = False,
        domains_file: Path | None = None,
        host: str = "",
        hang_file: Path | None = None,
        call_timeout_s: float = 60.0,
    ) -> None:
        """``domains_file``: keep the domains there (domains.py), so that they outlive this
        process and a test can read them; None keeps them in memory only. ``hang_file``: the
        hypervisor hangs while it exists; each call gives up after ``call_timeout_s``."""
        self.size = size
        self.images = images
        self.spawn_delay_s = spawn_delay_s
        self.fail_spawn = fail_spawn
        self.domains_file = domains_file
        self.host = host
        self._domains: dict[str, FakeDomain] = {}
        self._disks: set[str] = set()  # instance ids with a disk, with or without their domain
        self._file_seen: tuple[int, int, int] | None = None  # the domains file as last read or written
        self._reload_if_changed()
        self._on_power_event: PowerEventHandler | None = None
        self.hang_file = hang_file
        self.calls = TimedCalls(f"fake hypervisor of {host or 'this host'}", call_timeout_s, MAX_CALL_THREADS)

    @property
    def health(self) -> HypervisorHealth:
        return self.calls.health

    async def _hypervisor(self, what: str) -> None:
        """A call to the fake hypervisor: answered at once, or not at all while ``hang_file`` exists."""
        if self.hang_file is not None:
            await self.calls.run(what, _blocked_while, self.hang_file)
        self._reload_if_changed()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self.domains_file is None:
            return None
        try:
            st = os.stat(self.domains_file)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _reload_if_changed(self) -> None:
        """The domains file changed behind this driver's back (another process wrote it): it says
        what the hypervisor has now. A file that went away changes nothing."""
        stamp = self._file_stamp()
        if self.domains_file is None or stamp is None or stamp == self._file_seen:
            return
        self._domains, self._disks = load_domains(self.domains_file), load_disks(self.domains_file)
        self._file_seen = stamp

    async def check(self) -> None:
        await self._hypervisor("checking the hypervisor")

    def _saved(self) -> None:
        if self.domains_file is not None:
            save_domains(self.domains_file, self.host, self._domains, self._disks)
            self._file_seen = self._file_stamp()

    async def capabilities(self) -> HostInfo:
        await self._hypervisor("reading the host's info")
        return HostInfo(
            vcpus=self.size.vcpus,
            ram_mb=self.size.ram_mb,
            disk_gb=self.size.disk_gb,
            hypervisor_type=HYPERVISOR_TYPE,
            hypervisor_version=HYPERVISOR_VERSION,
            cpu_model=CPU_MODEL,
        )

    async def start(self, on_power_event: PowerEventHandler, deployment: str = "") -> None:
        self._on_power_event = on_power_event

    def guest_power_change(self, instance_id: str, power_state: int) -> None:
        """What a guest does by itself (powers off, crashes): changes the domain and reports it."""
        self._domain(instance_id).power_state = power_state
        self._saved()
        if self._on_power_event is not None:
            self._on_power_event(instance_id, power_state)

    async def spawn(self, spec: InstanceSpec) -> None:
        """Defines and starts the domain; an existing one of the same id is redefined."""
        await self._hypervisor("starting the domain")
        if self.spawn_delay_s > 0:
            await asyncio.sleep(self.spawn_delay_s)
        self._disks.add(spec.instance_id)
        if self.fail_spawn:
            self._domains.setdefault(spec.instance_id, FakeDomain(spec, P.POWER_STATE_SHUTDOWN))
            self._saved()
            raise DriverError(FAIL_SPAWN_MESSAGE)
        self._domains[spec.instance_id] = _booted(spec, P.POWER_STATE_RUNNING)
        self._saved()

    async def destroy(self, instance_id: str) -> None:
        await self._hypervisor("destroying the domain")
        self._domains.pop(instance_id, None)
        self._disks.discard(instance_id)
        self._saved()

    def undefine(self, instance_id: str) -> None:
        """What an operator's ``virsh destroy; virsh undefine`` does: the domain is gone, its disk
        stays; nothing is reported (the compute notices at its next look)."""
        self._domains.pop(instance_id, None)
        self._saved()

    def remove_disk(self, instance_id: str) -> None:
        """The instance's directory removed from the host (its disk with it)."""
        self._disks.discard(instance_id)
        self._saved()

    async def has_domain(self, instance_id: str) -> bool:
        await self._hypervisor("looking up the domain")
        return instance_id in self._domains

    async def has_disk(self, instance_id: str) -> bool:
        await self._hypervisor("looking for the disk")
        return instance_id in self._disks

    async def redefine(self, spec: InstanceSpec) -> bool:
        await self._hypervisor("defining the domain")
        if spec.instance_id in self._domains:
            return False
        if spec.instance_id not in self._disks:
            raise InstanceNotFound(spec.instance_id)
        self._domains[spec.instance_id] = _booted(spec, P.POWER_STATE_SHUTDOWN)
        self._saved()
        return True

    def _domain(self, instance_id: str) -> FakeDomain:
        domain = self._domains.get(instance_id)
        if domain is None:
            raise InstanceNotFound(instance_id)
        return domain

    def _expect(self, instance_id: str, action: str, *states: int) -> FakeDomain:
        domain = self._domain(instance_id)
        if domain.power_state not in states:
            wanted = " or ".join(_state_word(s) for s in states)
            raise DriverError(
                f"cannot {action} instance {instance_id}: its domain is {_state_word(domain.power_state)}, not {wanted}"
            )
        return domain

    async def power_off(self, instance_id: str, timeout_s: float = 0.0) -> None:
        await self._hypervisor("stopping the domain")
        self._domain(instance_id).power_state = P.POWER_STATE_SHUTDOWN
        self._saved()

    async def power_on(self, instance_id: str) -> None:
        await self._hypervisor("starting the domain")
        self._domain(instance_id).power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def reboot(self, instance_id: str, hard: bool) -> None:
        """A soft reboot asks the guest, so it needs a running domain; a hard one always starts it."""
        await self._hypervisor("rebooting the domain")
        domain = self._domain(instance_id) if hard else self._expect(instance_id, "soft-reboot", P.POWER_STATE_RUNNING)
        domain.power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def pause(self, instance_id: str) -> None:
        await self._hypervisor("pausing the domain")
        self._expect(instance_id, "pause", P.POWER_STATE_RUNNING).power_state = P.POWER_STATE_PAUSED
        self._saved()

    async def unpause(self, instance_id: str) -> None:
        await self._hypervisor("unpausing the domain")
        self._expect(instance_id, "unpause", P.POWER_STATE_PAUSED).power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def suspend(self, instance_id: str) -> None:
        await self._hypervisor("saving the domain's memory")
        domain = self._expect(instance_id, "suspend", P.POWER_STATE_RUNNING, P.POWER_STATE_PAUSED)
        domain.power_state = P.POWER_STATE_SUSPENDED
        self._saved()

    async def resume(self, instance_id: str) -> None:
        await self._hypervisor("restoring the domain")
        self._expect(instance_id, "resume", P.POWER_STATE_SUSPENDED).power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def resize(self, spec: InstanceSpec) -> None:
        await self._hypervisor("resizing the domain")
        domain = self._domain(spec.instance_id)
        if domain.resized_from is None:
            domain.resized_from = domain.spec
        domain.spec = spec
        domain.power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def confirm_resize(self, instance_id: str) -> None:
        await self._hypervisor("confirming the resize")
        self._domain(instance_id).resized_from = None
        self._saved()

    async def revert_resize(self, instance_id: str) -> None:
        await self._hypervisor("reverting the resize")
        domain = self._domain(instance_id)
        if domain.resized_from is not None:
            domain.spec, domain.resized_from = domain.resized_from, None
        domain.power_state = P.POWER_STATE_RUNNING
        self._saved()

    async def resize_kept(self, instance_id: str) -> bool:
        await self._hypervisor("reading the domain")
        domain = self._domains.get(instance_id)
        return domain is not None and domain.resized_from is not None

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        """Stores the image the instance booted from as the snapshot: bootable wherever that was."""
        await self._hypervisor("pausing the domain for a snapshot")
        domain = self._domain(instance_id)
        if self.images is None:
            raise DriverError("the fake driver has no image service to store a snapshot in")
        with tempfile.TemporaryDirectory(prefix="stratus-fake-snap-") as tmp:
            path = Path(tmp) / "disk"
            await self.images.download(domain.spec.image_id, path)
            await self.images.upload(image_id, path)

    async def console_output(self, instance_id: str, lines: int) -> str:
        await self._hypervisor("reading the console")
        console = self._domain(instance_id).console
        return "".join(f"{line}\n" for line in (console[-lines:] if lines else console))

    async def get_power_state(self, instance_id: str) -> int:
        await self._hypervisor("reading the domain state")
        domain = self._domains.get(instance_id)
        return P.POWER_STATE_NOSTATE if domain is None else domain.power_state

    async def list_instances(self) -> list[str]:
        await self._hypervisor("listing domains")
        return sorted(self._domains)

"""The libvirt driver: real QEMU/KVM guests on this node.

Each instance is a persistent domain named ``stratus-<id>`` whose UUID is the instance id,
tagged with its owning compute host; its disk is a qcow2 overlay on a base image cached once
per host, with a config drive and a serial console log beside it in the instance's directory.
Every libvirt call runs off the event loop with a timeout (connection.py); one that times out
makes ``health`` degraded until calls answer in time again.

A domain that vanished while its disk remains (an operator's ``virsh undefine``) is defined again
from the instance's spec by ``redefine``, as Nova's hard reboot does; a domain left transient (undefined
while it ran) counts as vanished: it would be gone at its next stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path

import libvirt

from services.compute.drivers.base import (
    DriverError,
    HostInfo,
    ImageService,
    InstanceNotFound,
    InstanceSpec,
    PowerEventHandler,
    VirtDriver,
)
from services.compute.drivers.health import HypervisorHealth
from services.compute.drivers.libvirt import configdrive, disks
from services.compute.drivers.libvirt.connection import Connection
from services.compute.drivers.libvirt.domain_xml import DomainPaths, DomainSettings, Owner, domain_xml, parse_owner
from services.compute.drivers.libvirt.files import InstanceFiles
from services.compute.drivers.libvirt.imagecache import ImageCache
from services.compute.drivers.libvirt.power import event_power_state, power_state
from services.compute.drivers.libvirt.settings import LibvirtSettings
from services.compute.drivers.libvirt.virt_type import resolve_virt_type
from services.core.private_files import private_dir
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
P = servers_pb2.PowerState
POLL_S = 0.1
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


class LibvirtDriver(VirtDriver):
    def __init__(
        self, settings: LibvirtSettings, host: str, state_dir: Path, images: ImageService, shutdown_timeout_s: float,
        call_timeout_s: float = 60.0,
    ) -> None:  # fmt: skip
        """``call_timeout_s``: how long any libvirt call may take (saving and restoring a guest's
        memory: ``settings.save_timeout_s``, if longer)."""
        self.settings = settings
        self.host = host
        self.instances_path = (settings.instances_path or state_dir / "instances" / host).resolve()
        cache_root = (settings.image_cache_path or state_dir / "image-cache").resolve()
        self.cache = ImageCache(cache_root, images, settings.image_cache_max_age_s)
        self.images = images
        self.shutdown_timeout_s = shutdown_timeout_s
        self.virt_type = settings.virt_type  # "auto" is resolved once connected, in start()
        self.lv = Connection(settings.uri, settings.workers, call_timeout_s)
        self.save_timeout_s = max(settings.save_timeout_s, call_timeout_s)
        self._owned: set[str] = set()  # instance ids of this host's domains, for filtering events
        self._on_power_event: PowerEventHandler | None = None
        self.deployment = ""

    # ---- connection -----------------------------------------------------------------------------
    async def start(self, on_power_event: PowerEventHandler, deployment: str = "") -> None:
        self._on_power_event = on_power_event
        self.deployment = deployment
        await asyncio.to_thread(private_dir, self.instances_path)  # guest disks, config drives, consoles
        await self.lv.open(self._lifecycle)
        self.virt_type = await resolve_virt_type(self.settings.virt_type, self.lv)
        self._owned = set(await self.list_instances())
        log.info("libvirt at %s (%s): %d domain(s) of %s adopted", self.settings.uri, self.virt_type,
                 len(self._owned), self.host)  # fmt: skip

    async def close(self) -> None:
        await self.lv.close()

    @property
    def health(self) -> HypervisorHealth:
        return self.lv.calls.health

    async def check(self) -> None:
        """Counting the domains goes through the QEMU driver's domain list, as most calls do."""
        conn = await self.lv.conn()
        await self.lv.call("counting domains", conn.numOfDomains)

    def _lifecycle(self, instance_id: str, event: int, detail: int) -> None:
        state = event_power_state(event, detail)
        if instance_id in self._owned and state is not None and self._on_power_event is not None:
            self._on_power_event(instance_id, state)

    async def capabilities(self) -> HostInfo:
        conn = await self.lv.conn()
        model, _numa_memory_mb, cpus, *_ = await self.lv.call("reading the host's info", conn.getInfo)
        # getInfo's memory is what the NUMA cells report, less than the host's on some VMs.
        memory = await self.lv.call("reading the host's memory", conn.getMemoryStats,
                                    libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)  # fmt: skip
        memory_mb = int(memory["total"]) // 1024
        version = await self.lv.call("reading the hypervisor version", conn.getVersion)
        usage = await asyncio.to_thread(shutil.disk_usage, self.instances_path)
        return HostInfo(
            vcpus=cpus, ram_mb=memory_mb, disk_gb=usage.total // 2**30,
            hypervisor_type=self.virt_type.upper(), hypervisor_version=version, cpu_model=model,
        )  # fmt: skip

    def _mine(self, owner: Owner | None) -> bool:
        return owner is not None and (owner.host, owner.deployment) == (self.host, self.deployment)

    def files(self, instance_id: str) -> InstanceFiles:
        return InstanceFiles(self.instances_path / instance_id)

    async def _domain(self, instance_id: str) -> libvirt.virDomain:
        """This host's domain of the instance; InstanceNotFound if absent or another host's."""
        dom = await self.lv.lookup(instance_id)
        xml = await self.lv.call("reading the domain", dom.XMLDesc, 0)
        if not self._mine(parse_owner(xml)):
            raise InstanceNotFound(instance_id)
        return dom

    # ---- create and destroy -----------------------------------------------------------------------
    async def spawn(self, spec: InstanceSpec) -> None:
        files = self.files(spec.instance_id)
        await self.destroy(spec.instance_id)  # a retried spawn starts from nothing
        await asyncio.to_thread(private_dir, files.root)
        self._owned.add(spec.instance_id)
        await asyncio.to_thread(files.image_id.write_text, spec.image_id)
        image = await self.cache.get(spec.image_id)
        await disks.create_overlay(image.path, image.info.disk_format, files.disk, spec.disk_gb)
        await configdrive.build_config_drive(spec, files.config_drive)
        xml = self._xml(spec, dict(image.info.properties), files)
        conn = await self.lv.conn()
        dom = await self.lv.call("defining the domain", conn.defineXML, xml)
        await self.lv.call("starting the domain", dom.create)

    def _xml(self, spec: InstanceSpec, properties: dict[str, str], files: InstanceFiles) -> str:
        paths = DomainPaths(disk=files.disk, config_drive=files.config_drive, console_log=files.console_log)
        settings = DomainSettings(virt_type=self.virt_type, host=self.host, deployment=self.deployment)
        return domain_xml(spec, properties, paths, settings)

    async def destroy(self, instance_id: str) -> None:
        try:
            dom = await self._domain(instance_id)
        except InstanceNotFound:
            pass
        else:
            await self._stop_now(dom)
            await self.lv.call("undefining the domain", dom.undefineFlags, UNDEFINE_FLAGS)
        self._owned.discard(instance_id)
        await asyncio.to_thread(shutil.rmtree, self.files(instance_id).root, True)

    async def _stop_now(self, dom: libvirt.virDomain) -> None:
        if await self.lv.call("reading the domain state", dom.isActive):
            try:
                await self.lv.call("destroying the domain", dom.destroy)
            except DriverError:
                if await self.lv.call("reading the domain state", dom.isActive):
                    raise  # it really is still running; otherwise it stopped by itself meanwhile

    # ---- power ------------------------------------------------------------------------------------
    async def _wait_inactive(self, dom: libvirt.virDomain, timeout_s: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self.lv.call("reading the domain state", dom.isActive):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def _shutdown(self, dom: libvirt.virDomain, timeout_s: float) -> bool:
        """Asks the guest to power off (ACPI); True if it did within ``timeout_s``."""
        if not await self.lv.call("reading the domain state", dom.isActive):
            return True
        try:
            await self.lv.call("asking the guest to shut down", dom.shutdown)
        except DriverError as exc:
            log.info("graceful shutdown refused (%s); destroying", exc)
            return False
        return await self._wait_inactive(dom, timeout_s)

    async def power_off(self, instance_id: str, timeout_s: float) -> None:
        dom = await self._domain(instance_id)
        if not await self._shutdown(dom, timeout_s):
            log.info("server %s did not shut down within %.0fs; destroying its domain", instance_id, timeout_s)
            await self._stop_now(dom)

    async def power_on(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        if not await self.lv.call("reading the domain state", dom.isActive):
            await self.lv.call("starting the domain", dom.create)

    async def reboot(self, instance_id: str, hard: bool) -> None:
        """Soft: the guest shuts down (ACPI) and is started again, hard if it does not (as Nova);
        hard: power cycle."""
        dom = await self._domain(instance_id)
        if not hard:
            state, _ = await self.lv.call("reading the domain state", dom.state)
            if state != libvirt.VIR_DOMAIN_RUNNING:
                raise DriverError(f"cannot soft-reboot instance {instance_id}: its domain is not running")
            if await self._shutdown(dom, self.shutdown_timeout_s):
                await self.lv.call("starting the domain", dom.create)
                return
            log.info("server %s ignored the soft reboot; rebooting it hard", instance_id)
        await self._stop_now(dom)
        await self.lv.call("starting the domain", dom.create)

    async def pause(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        await self.lv.call("pausing the domain", dom.suspend)

    async def unpause(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        await self.lv.call("unpausing the domain", dom.resume)

    async def suspend(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        await self.lv.call("saving the domain's memory", dom.managedSave, 0, timeout_s=self.save_timeout_s)

    async def resume(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        if not await self.lv.call("reading the domain", dom.hasManagedSaveImage, 0):
            raise DriverError(f"instance {instance_id} has no saved memory to resume from")
        await self.lv.call("restoring the domain", dom.create, timeout_s=self.save_timeout_s)

    # ---- resize -----------------------------------------------------------------------------------
    async def resize(self, spec: InstanceSpec) -> None:
        """Stops the guest, keeps its disk and definition, boots a copy of the disk grown to the
        new size with the new CPU and memory. Idempotent: a retry keeps the first backup."""
        dom = await self._domain(spec.instance_id)
        files = self.files(spec.instance_id)
        if not await self._shutdown(dom, self.shutdown_timeout_s):
            await self._stop_now(dom)
        if not await asyncio.to_thread(files.resize_disk.exists):
            old_xml = await self.lv.call("reading the domain", dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)
            await asyncio.to_thread(files.resize_xml.write_text, old_xml)
            await asyncio.to_thread(shutil.copyfile, files.disk, files.resize_disk)
        await disks.grow(files.disk, spec.disk_gb)
        image = await self.cache.get(spec.image_id)
        conn = await self.lv.conn()
        dom = await self.lv.call("defining the resized domain", conn.defineXML,
                                 self._xml(spec, dict(image.info.properties), files))  # fmt: skip
        await self.lv.call("starting the resized domain", dom.create)

    async def confirm_resize(self, instance_id: str) -> None:
        files = self.files(instance_id)
        for path in (files.resize_disk, files.resize_xml):
            await asyncio.to_thread(path.unlink, True)

    async def revert_resize(self, instance_id: str) -> None:
        dom = await self._domain(instance_id)
        files = self.files(instance_id)
        if await asyncio.to_thread(files.resize_disk.exists):
            await self._stop_now(dom)
            old_xml = await asyncio.to_thread(files.resize_xml.read_text)
            await asyncio.to_thread(os.replace, files.resize_disk, files.disk)
            conn = await self.lv.conn()
            dom = await self.lv.call("restoring the domain definition", conn.defineXML, old_xml)
            await asyncio.to_thread(files.resize_xml.unlink, True)
        if not await self.lv.call("reading the domain state", dom.isActive):
            await self.lv.call("starting the domain", dom.create)

    async def resize_kept(self, instance_id: str) -> bool:
        return await asyncio.to_thread(self.files(instance_id).resize_disk.exists)

    # ---- snapshot and console ---------------------------------------------------------------------
    async def snapshot(self, instance_id: str, image_id: str) -> None:
        """A running guest is paused while its disk is copied, so the copy is consistent."""
        dom = await self._domain(instance_id)
        files = self.files(instance_id)
        state, _ = await self.lv.call("reading the domain state", dom.state)
        running = state == libvirt.VIR_DOMAIN_RUNNING
        dest = files.snapshot(image_id)
        try:
            if running:
                await self.lv.call("pausing the domain for a snapshot", dom.suspend)
            try:
                await disks.flatten(files.disk, dest)
            finally:
                if running:
                    await self.lv.call("unpausing the domain after a snapshot", dom.resume)
            await self.images.upload(image_id, dest)
        finally:
            await asyncio.to_thread(dest.unlink, True)

    async def console_output(self, instance_id: str, lines: int) -> str:
        await self._domain(instance_id)
        data = await asyncio.to_thread(self._console_tail, self.files(instance_id).console_log)
        text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if lines:
            text = "".join(text.splitlines(keepends=True)[-lines:])
        return text

    def _console_tail(self, path: Path) -> bytes:
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, path.stat().st_size - self.settings.console_max_bytes))
                return fh.read()
        except FileNotFoundError:
            return b""

    # ---- housekeeping -----------------------------------------------------------------------------
    async def periodic(self) -> None:
        removed = await self.cache.age_out(await asyncio.to_thread(self._images_in_use))
        if removed:
            log.info("removed unused cached image(s) %s", ", ".join(removed))

    def _images_in_use(self) -> set[str]:
        in_use = set()
        for marker in self.instances_path.glob("*/image-id"):
            with contextlib.suppress(FileNotFoundError):
                in_use.add(marker.read_text().strip())
        return in_use

    async def has_domain(self, instance_id: str) -> bool:
        """True while this host has a persistent definition of the instance's domain."""
        try:
            dom = await self._domain(instance_id)
        except InstanceNotFound:
            return False
        return bool(await self.lv.call("reading the domain", dom.isPersistent))

    async def has_disk(self, instance_id: str) -> bool:
        return await asyncio.to_thread(self.files(instance_id).disk.exists)

    async def redefine(self, spec: InstanceSpec) -> bool:
        """The domain defined again (shut off, or still running if it was left transient) over the
        disk in the instance's directory, with the config drive made again if it is gone."""
        instance_id = spec.instance_id
        if await self.has_domain(instance_id):
            return False
        await self._refuse_anothers(instance_id)
        if not await self.has_disk(instance_id):
            raise InstanceNotFound(instance_id)
        files = self.files(instance_id)
        self._owned.add(instance_id)
        await asyncio.to_thread(files.image_id.write_text, spec.image_id)  # keeps the base in the cache
        image = await self.cache.get(spec.image_id)  # the base the disk stands on, fetched if it went
        if not await asyncio.to_thread(files.config_drive.exists):
            await configdrive.build_config_drive(spec, files.config_drive)
        conn = await self.lv.conn()
        await self.lv.call("defining the domain again", conn.defineXML,
                           self._xml(spec, dict(image.info.properties), files))  # fmt: skip
        log.warning("the domain of server %s had vanished from %s; defined again over its disk", instance_id,
                    self.host)  # fmt: skip
        return True

    async def _refuse_anothers(self, instance_id: str) -> None:
        """DriverError when a domain of this UUID that is not this host's exists (sharing libvirtd)."""
        try:
            dom = await self.lv.lookup(instance_id)
        except InstanceNotFound:
            return
        if not self._mine(parse_owner(await self.lv.call("reading the domain", dom.XMLDesc, 0))):
            raise DriverError(f"a domain of another host has the uuid of instance {instance_id}")

    # ---- state ------------------------------------------------------------------------------------
    async def get_power_state(self, instance_id: str) -> int:
        try:
            dom = await self._domain(instance_id)
        except InstanceNotFound:
            return P.POWER_STATE_NOSTATE
        state, reason = await self.lv.call("reading the domain state", dom.state)
        saved = await self.lv.call("reading the domain", dom.hasManagedSaveImage, 0)
        return power_state(state, reason, bool(saved))

    async def list_instances(self) -> list[str]:
        conn = await self.lv.conn()
        domains = await self.lv.call("listing domains", conn.listAllDomains, 0)
        owned = []
        for dom in domains:
            try:
                owner = parse_owner(await self.lv.call("reading a domain", dom.XMLDesc, 0))
            except DriverError:
                continue  # undefined meanwhile
            if owner is not None and self._mine(owner):
                owned.append(owner.instance_id)
        return sorted(owned)

"""The libvirt domain XML of an instance, as a pure function of its spec, image and paths.

Each compute host tags the domains it owns with a ``<stratus:instance>`` metadata element, so
several compute processes can share one libvirtd and each touch only its own domains.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from services.compute.drivers.base import DriverError, InstanceSpec

NAMESPACE = "https://stratus.dev/xmlns/libvirt/instance/1"
PREFIX = "stratus"
VIRT_TYPES = ("qemu", "kvm")
DISK_CACHE_MODES = ("none", "writethrough", "writeback", "directsync", "unsafe")
MACHINE_RE = re.compile(r"^[a-z0-9._-]{1,64}$")
# hw_disk_bus -> the root disk's target device name.
DISK_BUSES: dict[str, str] = {"virtio": "vda", "sata": "sda", "scsi": "sda", "ide": "hda"}
CONFIG_DRIVE_DEV = "vdb"


@dataclass(frozen=True, slots=True)
class DomainPaths:
    """Where an instance's files are on the host."""

    disk: Path
    config_drive: Path | None
    console_log: Path


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """Host-wide choices: ``virt_type`` is already resolved ("qemu" or "kvm", never "auto").

    ``disk_cache`` is the root disk's cache mode; "none" needs O_DIRECT, which tmpfs lacks.
    """

    virt_type: str
    host: str
    machine: str = "pc"
    # The deployment (etcd and prefix) the host belongs to: two stacks may both have a compute-1.
    deployment: str = ""
    disk_cache: str = "none"


@dataclass(frozen=True, slots=True)
class _ImageChoices:
    machine: str
    disk_bus: str


def domain_name(instance_id: str) -> str:
    """The libvirt domain name of an instance."""
    return f"stratus-{instance_id}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _image_choices(image_properties: Mapping[str, str], settings: DomainSettings) -> _ImageChoices:
    machine = image_properties.get("hw_machine_type", settings.machine)
    if not MACHINE_RE.fullmatch(machine):
        raise DriverError(f"image property hw_machine_type={machine!r} is not a machine type name")
    bus = image_properties.get("hw_disk_bus", "virtio")
    if bus not in DISK_BUSES:
        raise DriverError(f"image property hw_disk_bus={bus!r} is not supported; use one of {', '.join(DISK_BUSES)}")
    if bus == "ide" and "q35" in machine:
        raise DriverError(f"image property hw_disk_bus='ide' does not work with machine type {machine!r}")
    return _ImageChoices(machine=machine, disk_bus=bus)


def _check_inputs(spec: InstanceSpec, settings: DomainSettings) -> None:
    if settings.virt_type not in VIRT_TYPES:
        raise DriverError(f"virt type {settings.virt_type!r} is not one of {', '.join(VIRT_TYPES)}")
    if settings.disk_cache not in DISK_CACHE_MODES:
        raise DriverError(f"disk cache mode {settings.disk_cache!r} is not one of {', '.join(DISK_CACHE_MODES)}")
    try:
        uuid.UUID(spec.instance_id)
    except ValueError:
        raise DriverError(f"instance id {spec.instance_id!r} is not a UUID") from None
    if spec.vcpus < 1 or spec.ram_mb < 1:
        raise DriverError(f"instance {spec.instance_id}: vcpus and ram_mb must be positive")


def _metadata(domain: ET.Element, spec: InstanceSpec, settings: DomainSettings) -> None:
    metadata = _sub(domain, "metadata")
    owner = _sub(metadata, f"{PREFIX}:instance", **{f"xmlns:{PREFIX}": NAMESPACE})
    _sub(owner, f"{PREFIX}:id", spec.instance_id)
    _sub(owner, f"{PREFIX}:host", settings.host)
    if settings.deployment:
        _sub(owner, f"{PREFIX}:deployment", settings.deployment)
    _sub(owner, f"{PREFIX}:name", spec.name)
    _sub(owner, f"{PREFIX}:project", spec.project_id)


def _root_disk(devices: ET.Element, path: Path, bus: str, cache: str) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2", cache=cache, discard="unmap")
    _sub(disk, "source", file=str(path))
    _sub(disk, "target", dev=DISK_BUSES[bus], bus=bus)


def _config_drive(devices: ET.Element, path: Path) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=str(path))
    _sub(disk, "target", dev=CONFIG_DRIVE_DEV, bus="virtio")
    _sub(disk, "readonly")


def _console(devices: ET.Element, log: Path) -> None:
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(log), append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=str(log), append="on")
    _sub(console, "target", type="serial", port="0")


def _devices(domain: ET.Element, paths: DomainPaths, choices: _ImageChoices, cache: str) -> None:
    devices = _sub(domain, "devices")
    _root_disk(devices, paths.disk, choices.disk_bus, cache)
    if paths.config_drive is not None:
        _config_drive(devices, paths.config_drive)
    if choices.disk_bus == "scsi":
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    _sub(devices, "controller", type="usb", model="none")
    _console(devices, paths.console_log)
    _sub(devices, "memballoon", model="none")


def _platform(domain: ET.Element, machine: str, virt_type: str) -> None:
    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=machine)
    _sub(os_, "boot", dev="hd")
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if virt_type == "kvm":
        _sub(domain, "cpu", mode="host-model")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")


def domain_xml(
    spec: InstanceSpec, image_properties: Mapping[str, str], paths: DomainPaths, settings: DomainSettings
) -> str:
    """The domain definition; DriverError for an image property or setting it cannot honour."""
    _check_inputs(spec, settings)
    choices = _image_choices(image_properties, settings)
    domain = ET.Element("domain", type=settings.virt_type)
    _sub(domain, "name", domain_name(spec.instance_id))
    _sub(domain, "uuid", spec.instance_id)
    _metadata(domain, spec, settings)
    _sub(domain, "memory", str(spec.ram_mb), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus))
    _platform(domain, choices.machine, settings.virt_type)
    _devices(domain, paths, choices, settings.disk_cache)
    ET.indent(domain, space="  ")
    return ET.tostring(domain, encoding="unicode") + "\n"


class Owner(NamedTuple):
    instance_id: str
    host: str
    deployment: str


def parse_owner(xml: str) -> Owner | None:
    """Who owns a domain, from its Stratus metadata; None when the domain is not Stratus's.

    DriverError when ``xml`` is not XML at all.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DriverError(f"domain XML does not parse: {e}") from None
    owner = root.find(f"metadata/{{{NAMESPACE}}}instance")
    if owner is None:
        return None
    instance_id = owner.findtext(f"{{{NAMESPACE}}}id", "").strip()
    host = owner.findtext(f"{{{NAMESPACE}}}host", "").strip()
    if not instance_id or not host:
        return None
    return Owner(instance_id, host, owner.findtext(f"{{{NAMESPACE}}}deployment", "").strip())

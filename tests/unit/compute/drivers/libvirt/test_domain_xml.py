"""The libvirt domain XML: golden files, the owner tag, escaping and refused image properties."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from services.compute.drivers.base import DriverError, InstanceSpec
from services.compute.drivers.libvirt.domain_xml import (
    NAMESPACE,
    DomainPaths,
    DomainSettings,
    domain_name,
    domain_xml,
    parse_owner,
)

GOLDEN = Path(__file__).parent / "golden"
INSTANCE_ID = "0b6f2c7e-58d4-4d3a-9c1e-2f8a7b6c5d41"
DIR = Path("/var/lib/stratus/instances") / INSTANCE_ID


def spec(name: str = "web-1", instance_id: str = INSTANCE_ID) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id, name=name, vcpus=2, ram_mb=256, disk_gb=1, image_id="img-1", project_id="proj-a"
    )


def paths(config_drive: bool = True) -> DomainPaths:
    return DomainPaths(
        disk=DIR / "disk", config_drive=DIR / "disk.config" if config_drive else None, console_log=DIR / "console.log"
    )


QEMU = DomainSettings(virt_type="qemu", host="compute-1")
KVM = DomainSettings(virt_type="kvm", host="compute-2")


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_qemu_domain_with_config_drive_matches_golden() -> None:
    xml = domain_xml(spec(), {}, paths(config_drive=True), QEMU)
    assert xml == golden("libvirt_domain_qemu_config_drive.xml")


def test_kvm_domain_sata_without_config_drive_matches_golden() -> None:
    xml = domain_xml(spec(), {"hw_disk_bus": "sata"}, paths(config_drive=False), KVM)
    assert xml == golden("libvirt_domain_kvm_sata.xml")


def test_domain_name_and_uuid() -> None:
    root = ET.fromstring(domain_xml(spec(), {}, paths(), QEMU))
    assert root.findtext("name") == domain_name(INSTANCE_ID) == f"stratus-{INSTANCE_ID}"
    assert root.findtext("uuid") == INSTANCE_ID


def test_parse_owner_round_trip() -> None:
    assert parse_owner(domain_xml(spec(), {}, paths(), KVM)) == (INSTANCE_ID, "compute-2", "")
    tagged = dataclasses.replace(KVM, deployment="d-1")
    assert parse_owner(domain_xml(spec(), {}, paths(), tagged)) == (INSTANCE_ID, "compute-2", "d-1")


@pytest.mark.parametrize(
    "xml",
    [
        "<domain type='qemu'><name>someone-else</name></domain>",
        "<domain><metadata><other:x xmlns:other='urn:other'/></metadata></domain>",
        f"<domain><metadata><s:instance xmlns:s='{NAMESPACE}'><s:id>x</s:id></s:instance></metadata></domain>",
    ],
)
def test_parse_owner_of_foreign_domain_is_none(xml: str) -> None:
    assert parse_owner(xml) is None


def test_parse_owner_of_garbage_fails() -> None:
    with pytest.raises(DriverError, match="does not parse"):
        parse_owner("<domain>")


def test_server_name_is_escaped_and_only_in_metadata() -> None:
    name = "a <b> & \"c\" 'd' é 日本 </stratus:name>"
    xml = domain_xml(spec(name=name), {}, paths(), QEMU)
    root = ET.fromstring(xml)
    assert root.findtext(f"metadata/{{{NAMESPACE}}}instance/{{{NAMESPACE}}}name") == name
    assert xml.count("日本") == 1
    assert root.findtext("name") == f"stratus-{INSTANCE_ID}"


@pytest.mark.parametrize(("bus", "dev"), [("virtio", "vda"), ("sata", "sda"), ("ide", "hda"), ("scsi", "sda")])
def test_disk_bus_sets_target(bus: str, dev: str) -> None:
    root = ET.fromstring(domain_xml(spec(), {"hw_disk_bus": bus}, paths(), QEMU))
    target = root.find("devices/disk/target")
    assert target is not None
    assert (target.get("bus"), target.get("dev")) == (bus, dev)


def test_unknown_disk_bus_fails_naming_the_property() -> None:
    with pytest.raises(DriverError, match="hw_disk_bus='floppy'"):
        domain_xml(spec(), {"hw_disk_bus": "floppy"}, paths(), QEMU)


def test_machine_type_from_image() -> None:
    root = ET.fromstring(domain_xml(spec(), {"hw_machine_type": "pc-q35-7.2"}, paths(), QEMU))
    os_type = root.find("os/type")
    assert os_type is not None
    assert os_type.get("machine") == "pc-q35-7.2"


@pytest.mark.parametrize("machine", ["", "PC", "pc i440fx", "x" * 65, "pc'/><evil"])
def test_bad_machine_type_fails(machine: str) -> None:
    with pytest.raises(DriverError, match="hw_machine_type"):
        domain_xml(spec(), {"hw_machine_type": machine}, paths(), QEMU)


def test_ide_on_q35_fails() -> None:
    with pytest.raises(DriverError, match="ide"):
        domain_xml(spec(), {"hw_disk_bus": "ide", "hw_machine_type": "q35"}, paths(), QEMU)


@pytest.mark.parametrize(
    ("the_spec", "settings", "message"),
    [
        (spec(instance_id="i-1"), QEMU, "not a UUID"),
        (spec(), DomainSettings(virt_type="auto", host="h"), "virt type"),
        (spec(), DomainSettings(virt_type="qemu", host="h", disk_cache="bogus"), "cache"),
    ],
)
def test_bad_inputs_fail(the_spec: InstanceSpec, settings: DomainSettings, message: str) -> None:
    with pytest.raises(DriverError, match=message):
        domain_xml(the_spec, {}, paths(), settings)

"""virt_type=auto: KVM is probed only where the CPU offers vmx/svm and /dev/kvm is usable."""

from __future__ import annotations

from pathlib import Path

from services.compute.drivers.libvirt.virt_type import hardware_virtualisation, kvm_worth_probing, probe_xml


def test_cpu_flags_decide_whether_hardware_virtualisation_is_there() -> None:
    assert hardware_virtualisation("processor: 0\nflags\t\t: fpu vme vmx sse\n")
    assert hardware_virtualisation("flags : fpu svm\n")
    assert not hardware_virtualisation("flags : fpu vme sse hypervisor\n")
    assert not hardware_virtualisation("")


def test_no_probe_without_the_flags_or_the_device(tmp_path: Path) -> None:
    cpuinfo, device = tmp_path / "cpuinfo", tmp_path / "kvm"
    cpuinfo.write_text("flags : fpu sse\n")
    device.write_text("")
    assert not kvm_worth_probing(cpuinfo, device)
    cpuinfo.write_text("flags : fpu vmx\n")
    assert kvm_worth_probing(cpuinfo, device)
    assert not kvm_worth_probing(cpuinfo, tmp_path / "absent")


def test_the_probe_domain_is_of_the_asked_type_with_a_serial_log() -> None:
    xml = probe_xml("kvm", Path("/p/disk"), Path("/p/console.log"))
    assert "<domain type='kvm'>" in xml and "/p/disk" in xml and "/p/console.log" in xml

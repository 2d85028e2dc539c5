"""Which domain type to run: KVM only where the CPU really offers hardware virtualisation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def hardware_virtualisation(cpuinfo: str) -> bool:
    """True when /proc/cpuinfo's flags list Intel VT-x (vmx) or AMD-V (svm)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"vmx", "svm"})
    return False


def resolve_virt_type(setting: str, cpuinfo_path: Path = Path("/proc/cpuinfo"), kvm: Path = Path("/dev/kvm")) -> str:
    """``kvm``/``qemu`` as set; ``auto``: kvm when /dev/kvm is usable AND the CPU has vmx/svm.

    /dev/kvm alone proves nothing: on a VM without nested virtualisation it exists, a kvm domain
    even shows "running", yet the guest never prints a line (shared/notes/platform-facts.md).
    """
    if setting != "auto":
        return setting
    try:
        cpu_ok = hardware_virtualisation(cpuinfo_path.read_text())
    except OSError:
        cpu_ok = False
    device_ok = os.access(kvm, os.R_OK | os.W_OK)
    choice = "kvm" if cpu_ok and device_ok else "qemu"
    log.info("virt_type auto: %s (/dev/kvm %s, CPU virtualisation flags %s)", choice,
             "usable" if device_ok else "absent", "present" if cpu_ok else "absent")  # fmt: skip
    return choice

"""Which domain type to run: KVM only where a guest really runs under it.

``/dev/kvm`` alone proves nothing: on a VM without nested virtualisation it exists, a kvm domain
even shows "running", yet the guest never prints a line (shared/notes/platform-facts.md). So
``auto`` needs the CPU's vmx/svm flag, a usable /dev/kvm, and then a probe guest (a boot sector
that writes to the serial port) that prints under KVM within a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import uuid
from pathlib import Path

from services.compute.drivers.base import DriverError
from services.compute.drivers.libvirt.connection import Connection
from services.core.boot_sector import MESSAGE, tiny_image

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 10.0


def hardware_virtualisation(cpuinfo: str) -> bool:
    """True when /proc/cpuinfo's flags list Intel VT-x (vmx) or AMD-V (svm)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"vmx", "svm"})
    return False


def kvm_worth_probing(cpuinfo_path: Path = Path("/proc/cpuinfo"), kvm: Path = Path("/dev/kvm")) -> bool:
    try:
        cpu_ok = hardware_virtualisation(cpuinfo_path.read_text())
    except OSError:
        cpu_ok = False
    device_ok = os.access(kvm, os.R_OK | os.W_OK)
    log.info("KVM: /dev/kvm %s, CPU virtualisation flags %s", "usable" if device_ok else "absent",
             "present" if cpu_ok else "absent")  # fmt: skip
    return cpu_ok and device_ok


def probe_xml(virt_type: str, disk: Path, console: Path) -> str:
    return f"""<domain type='{virt_type}'>
  <name>stratus-probe-{uuid.uuid4()}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>
      <target dev='hda' bus='ide'/></disk>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


async def guest_prints(lv: Connection, virt_type: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Boots a transient probe guest of ``virt_type``; True if its line reaches the serial port."""
    with tempfile.TemporaryDirectory(prefix="stratus-probe-") as tmp:
        disk, console = Path(tmp) / "probe.img", Path(tmp) / "console.log"
        await asyncio.to_thread(disk.write_bytes, tiny_image())
        conn = await lv.conn()
        xml = probe_xml(virt_type, disk, console)
        dom = await lv.call(f"starting a {virt_type} probe guest", conn.createXML, xml, 0)
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while asyncio.get_running_loop().time() < deadline:
                if console.exists() and MESSAGE.strip() in await asyncio.to_thread(console.read_bytes):
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            try:
                await lv.call("removing the probe guest", dom.destroy)
            except DriverError as exc:
                log.warning("%s", exc)


async def resolve_virt_type(setting: str, lv: Connection) -> str:
    """``kvm``/``qemu`` as set; ``auto``: kvm when the probe guest prints under KVM, else qemu."""
    if setting != "auto":
        return setting
    choice = "qemu"
    if kvm_worth_probing():
        try:
            choice = "kvm" if await guest_prints(lv, "kvm") else "qemu"
        except DriverError as exc:
            log.warning("the KVM probe failed (%s)", exc)
    log.info("virt_type auto: %s", choice)
    return choice

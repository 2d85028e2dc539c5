"""Test clean-up: the libvirt domains a test stack made, found by their disks under its state dir."""

from __future__ import annotations

from pathlib import Path

import libvirt


def remove_domains_under(state_dir: Path, uri: str = "qemu:///system") -> list[str]:
    """Destroys and undefines every domain with a disk under ``state_dir``; returns their names."""
    removed = []
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if f"'{state_dir.resolve()}/" not in dom.XMLDesc(0).replace('"', "'"):
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            removed.append(dom.name())
    finally:
        conn.close()
    return removed

"""The image's architecture, hypervisor type, hypervisor version and VM mode against the host,
after Nova's ImagePropertiesFilter."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping

from services.scheduler.filters.base import Filter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest

# Each property under its Nova name first, then its legacy name.
ARCHITECTURE = ("hw_architecture", "architecture")
HYPERVISOR_TYPE = ("img_hv_type", "hypervisor_type")
HYPERVISOR_VERSION = ("img_hv_requested_version", "hypervisor_version_requires")
VM_MODE = ("hw_vm_mode", "vm_mode")
KEYS = frozenset(ARCHITECTURE + HYPERVISOR_TYPE + HYPERVISOR_VERSION + VM_MODE)

# Nova's canonical spellings (fields.Architecture/HVType/VMMode.canonicalize).
_ARCH_ALIASES = {"i386": "i686", "i486": "i686", "i586": "i686", "x86_32": "i686", "amd64": "x86_64"}
_HV_ALIASES = {"xapi": "xen"}
_VM_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}

_CLAUSE = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*(\d+(?:\.\d+){0,2})\s*$")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}


def _canonical(value: str, aliases: Mapping[str, str]) -> str:
    value = value.strip().lower()
    return aliases.get(value, value)


def _prop(props: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((props[n].strip() for n in names if props.get(n, "").strip()), "")


def version_number(text: str) -> int:
    """A version as a number: "6000" -> 6000; a dotted "6.1.2" -> Nova's encoding 6*1000000 + 1*1000 + 2."""
    if "." not in text:
        return int(text)
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return parts[0] * 1_000_000 + parts[1] * 1000 + parts[2]


def version_satisfied(requirement: str, version: int) -> bool:
    """Whether ``version`` meets every comma-separated clause (">=6000", "<7.0"); ValueError when
    the requirement is not one."""
    clauses = [c for c in requirement.split(",") if c.strip()]
    if not clauses:
        raise ValueError(requirement)
    for clause in clauses:
        found = _CLAUSE.match(clause)
        if found is None:
            raise ValueError(requirement)
        if not _COMPARE[found.group(1) or "=="](version, version_number(found.group(2))):
            return False
    return True


class ImagePropertiesFilter(Filter):
    """Hosts that run what the image needs: ``hw_architecture`` (or ``architecture``),
    ``img_hv_type`` (``hypervisor_type``), ``img_hv_requested_version``
    (``hypervisor_version_requires``, e.g. ">=6000" or ">=6.0,<7.0") and ``hw_vm_mode``
    (``vm_mode``). An image that names none of them runs anywhere."""

    name = "ImagePropertiesFilter"

    def is_relevant(self, request: SchedulingRequest) -> bool:
        return not KEYS.isdisjoint(request.spec.image_properties)

    def host_passes(self, host: HostState, request: SchedulingRequest) -> str | None:
        props, caps = request.spec.image_properties, host.capabilities
        arch = _canonical(_prop(props, ARCHITECTURE), _ARCH_ALIASES)
        if arch and arch != _canonical(caps.architecture, _ARCH_ALIASES):
            return f"image needs architecture {arch}, host is {caps.architecture or 'unreported'}"
        hv_type = _canonical(_prop(props, HYPERVISOR_TYPE), _HV_ALIASES)
        if hv_type and hv_type != _canonical(caps.hypervisor_type, _HV_ALIASES):
            return f"image needs hypervisor {hv_type}, host runs {caps.hypervisor_type or 'an unreported one'}"
        vm_mode = _canonical(_prop(props, VM_MODE), _VM_MODE_ALIASES)
        if vm_mode and vm_mode not in {_canonical(m, _VM_MODE_ALIASES) for m in caps.vm_modes}:
            modes = ", ".join(caps.vm_modes) or "none reported"
            return f"image needs VM mode {vm_mode}, host runs {modes}"
        wanted = _prop(props, HYPERVISOR_VERSION)
        if wanted and caps.hypervisor_version:
            try:
                satisfied = version_satisfied(wanted, caps.hypervisor_version)
            except ValueError:
                return f"image hypervisor version requirement {wanted!r} is not like '>=6000' or '>=6.0,<7.0'"
            if not satisfied:
                return f"image needs hypervisor version {wanted}, host has {caps.hypervisor_version}"
        return None

"""libvirt domain states and lifecycle events as Stratus power states."""

from __future__ import annotations

import libvirt

from stratus.v1 import servers_pb2

P = servers_pb2.PowerState

_BY_STATE: dict[int, int] = {
    libvirt.VIR_DOMAIN_NOSTATE: P.POWER_STATE_NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: P.POWER_STATE_RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: P.POWER_STATE_RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: P.POWER_STATE_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: P.POWER_STATE_SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: P.POWER_STATE_SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: P.POWER_STATE_CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: P.POWER_STATE_SUSPENDED,
}


def power_state(state: int, reason: int, managed_save: bool) -> int:
    """A domain's ``(state, reason)`` and whether it has a managed-save image, as a PowerState.

    A shut-off domain with a saved memory image is SUSPENDED; one that shut off because it crashed
    (``on_crash`` destroys it) is CRASHED.
    """
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        if managed_save:
            return P.POWER_STATE_SUSPENDED
        if reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
            return P.POWER_STATE_CRASHED
    return _BY_STATE.get(state, P.POWER_STATE_NOSTATE)


_BY_EVENT: dict[int, int] = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: P.POWER_STATE_RUNNING,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: P.POWER_STATE_RUNNING,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: P.POWER_STATE_PAUSED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: P.POWER_STATE_SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: P.POWER_STATE_SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: P.POWER_STATE_CRASHED,
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: P.POWER_STATE_SUSPENDED,
    # The domain is gone (an operator's virsh undefine): the compute looks at once whether its disk remains.
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: P.POWER_STATE_NOSTATE,
}


def event_power_state(event: int, detail: int) -> int | None:
    """The power state a lifecycle event announces (NOSTATE: the domain was undefined); None for
    events that change none (defined)."""
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED:
            return P.POWER_STATE_CRASHED
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED:
            return P.POWER_STATE_SUSPENDED
    return _BY_EVENT.get(event)

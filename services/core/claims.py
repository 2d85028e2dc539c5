"""Resource claims on hosts: ``hosts/<host>/usage`` changed only by compare-and-swap on its mod
revision, so no two writers (several schedulers, or a scheduler and a release) can over-commit."""

from __future__ import annotations

from dataclasses import dataclass

from services.core import keys
from services.core.errors import Aborted
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

MAX_SWAP_ATTEMPTS = 50


@dataclass(frozen=True, slots=True)
class Totals:
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    instances: int = 0


def totals(usage: state_pb2.HostUsage) -> Totals:
    claims = usage.claims.values()
    return Totals(
        vcpus=sum(c.vcpus for c in claims),
        ram_mb=sum(c.ram_mb for c in claims),
        disk_gb=sum(c.disk_gb for c in claims),
        instances=len(usage.claims),
    )


async def read_usage(store: Store, host: str) -> tuple[state_pb2.HostUsage, int]:
    kv = await store.get(keys.host_usage(host))
    if kv is None:
        return state_pb2.HostUsage(), 0
    return state_pb2.HostUsage.FromString(kv.value), kv.mod_revision


async def try_claim(
    store: Store, host: str, claim: state_pb2.Claim, usage: state_pb2.HostUsage, mod_revision: int
) -> bool:
    """Adds ``claim`` to the usage read at ``mod_revision``; False if the usage changed since."""
    new = state_pb2.HostUsage()
    new.CopyFrom(usage)
    new.claims[claim.instance_id].CopyFrom(claim)
    return await store.swap(keys.host_usage(host), new.SerializeToString(), mod_revision)


async def release(store: Store, host: str, instance_id: str) -> bool:
    """Removes the instance's claim from the host; True if there was one."""
    for _ in range(MAX_SWAP_ATTEMPTS):
        usage, revision = await read_usage(store, host)
        if instance_id not in usage.claims:
            return False
        del usage.claims[instance_id]
        if await store.swap(keys.host_usage(host), usage.SerializeToString(), revision):
            return True
    raise Aborted(f"could not release the claim of {instance_id} on {host}: too much contention")


# ---- resizing a claim in place (a resize on the same host) -------------------------------------
CHECKED = ("ram_mb", "disk_gb")  # vCPUs are overcommitted by the scheduler's ratio: not checked here


def max_resources(a: servers_pb2.ServerResources, b: servers_pb2.ServerResources) -> servers_pb2.ServerResources:
    """Per resource, the larger of the two: what a host holds while a resize waits for confirmation."""
    return servers_pb2.ServerResources(
        vcpus=max(a.vcpus, b.vcpus), ram_mb=max(a.ram_mb, b.ram_mb), disk_gb=max(a.disk_gb, b.disk_gb)
    )


def sized(claim: state_pb2.Claim, resources: servers_pb2.ServerResources, flavor_id: str) -> state_pb2.Claim:
    """``claim`` (or a new one) holding ``resources`` for ``flavor_id``, keeping who and when."""
    out = state_pb2.Claim()
    out.CopyFrom(claim)
    out.vcpus, out.ram_mb, out.disk_gb = resources.vcpus, resources.ram_mb, resources.disk_gb
    out.flavor_id = flavor_id
    return out


def shortfall(
    caps: state_pb2.HostCapabilities, usage: state_pb2.HostUsage, instance_id: str,
    wanted: servers_pb2.ServerResources,
) -> list[str]:  # fmt: skip
    """The resources (of ``CHECKED``) that would not fit if the instance's claim became ``wanted``:
    every other claim plus ``wanted`` against total minus reserved. A resource the claim does not
    grow is never short, so a host already over-committed by its operator can still shrink."""
    current = usage.claims.get(instance_id, state_pb2.Claim())
    short = []
    for name in CHECKED:
        want = getattr(wanted, name)
        if want <= getattr(current, name):
            continue
        others = sum(getattr(c, name) for i, c in usage.claims.items() if i != instance_id)
        room = getattr(caps, name) - getattr(caps, f"reserved_{name}")
        if others + want > room:
            short.append(name)
    return short


async def read_capabilities(store: Store, host: str) -> state_pb2.HostCapabilities | None:
    """What the host's compute reports (None while it is down: the key lives on its lease)."""
    kv = await store.get(keys.host_capabilities(host))
    return state_pb2.HostCapabilities.FromString(kv.value) if kv else None

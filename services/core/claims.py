"""Resource claims on hosts: ``hosts/<host>/usage`` changed only by compare-and-swap on its mod
revision, so no two writers (several schedulers, or a scheduler and a release) can over-commit."""

from __future__ import annotations

from dataclasses import dataclass

from services.core import keys
from services.core.errors import Aborted
from services.core.etcd import Store
from stratus.state.v1 import state_pb2

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

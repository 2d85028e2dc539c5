"""The claims audit against a real etcd: planted orphan claims and a server placed without a claim
are repaired, counted and logged; a consistent placement is left alone; two audits at once repair
each thing once; the grace leaves what changed just now."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from services.api.admin.claim_audit import MISSING, ORPHAN, ClaimAudit
from services.core import claims, instances, keys
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2


async def put_record(store: Store, instance_id: str, host: str, ram_mb: int = 1024) -> None:
    server = servers_pb2.Server(
        id=instance_id, project_id="p-1", host=host, flavor_id="m1.small",
        resources=servers_pb2.ServerResources(vcpus=2, ram_mb=ram_mb, disk_gb=10),
        vm_state=servers_pb2.VmState.VM_STATE_ACTIVE,
    )  # fmt: skip
    record = state_pb2.InstanceRecord(server=server)
    instances.stamp(record)
    await store.put(keys.instance(instance_id), record.SerializeToString())


async def put_claims(store: Store, host: str, *instance_ids: str) -> None:
    usage = state_pb2.HostUsage()
    for instance_id in instance_ids:
        usage.claims[instance_id].CopyFrom(
            state_pb2.Claim(instance_id=instance_id, ram_mb=512, vcpus=1, created_at=instances.now())
        )
    await store.put(keys.host_usage(host), usage.SerializeToString())


async def claimed(store: Store, host: str) -> dict[str, state_pb2.Claim]:
    usage, _ = await claims.read_usage(store, host)
    return dict(usage.claims)


async def plant(store: Store) -> None:
    """h1: "ok" (consistent), "ghost" (no record), "moved" (its record names h2); "bare" names h1
    without a claim there."""
    await put_record(store, "ok", "h1")
    await put_record(store, "moved", "h2")
    await put_record(store, "bare", "h1", ram_mb=2048)
    await put_claims(store, "h1", "ok", "ghost", "moved")
    await put_claims(store, "h2", "moved")


async def test_orphans_and_a_missing_claim_are_repaired_counted_and_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await plant(store)
    audit = ClaimAudit(store, grace_s=0)
    assert len(await audit.check()) == 3 and sum(audit.repairs.values()) == 0  # check repairs nothing
    with caplog.at_level(logging.WARNING, logger="services.api.admin.claim_audit"):
        result = await audit.run_once()
    assert sorted((f.kind, f.instance_id, f.host) for f in result.repaired) == [
        (MISSING, "bare", "h1"), (ORPHAN, "ghost", "h1"), (ORPHAN, "moved", "h1"),
    ]  # fmt: skip
    assert audit.repairs == Counter({ORPHAN: 2, MISSING: 1})
    on_h1 = await claimed(store, "h1")
    assert sorted(on_h1) == ["bare", "ok"] and list(await claimed(store, "h2")) == ["moved"]
    bare = on_h1["bare"]  # re-added from the record
    assert (bare.vcpus, bare.ram_mb, bare.disk_gb, bare.flavor_id, bare.project_id) == (2, 2048, 10, "m1.small", "p-1")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("orphan claim of server ghost on host h1 (no server record)" in m for m in messages), messages
    assert any("orphan claim of server moved on host h1 (the record names 'h2')" in m for m in messages), messages
    assert any("missing claim of server bare on host h1" in m for m in messages), messages
    again = await audit.run_once()
    assert again.repaired == [] and again.moved == 0  # nothing left: the invariant holds
    assert sum(audit.repairs.values()) == 3


async def test_two_audits_at_once_repair_each_thing_once(store: Store) -> None:
    await plant(store)
    one, two = ClaimAudit(store, grace_s=0), ClaimAudit(store, grace_s=0)
    await asyncio.gather(one.run_once(), two.run_once())
    assert one.repairs + two.repairs == Counter({ORPHAN: 2, MISSING: 1})
    assert sorted(await claimed(store, "h1")) == ["bare", "ok"]


async def test_a_claim_during_a_resize_holds_both_sizes(store: Store) -> None:
    await put_record(store, "r", "h1", ram_mb=4096)

    def resizing(record: state_pb2.InstanceRecord) -> None:
        record.resize.old_flavor_id = "m1.big"
        record.resize.old_resources.CopyFrom(servers_pb2.ServerResources(vcpus=8, ram_mb=1024, disk_gb=10))

    await instances.update(store, "r", resizing)
    await ClaimAudit(store, grace_s=0).run_once()
    claim = (await claimed(store, "h1"))["r"]
    assert (claim.vcpus, claim.ram_mb) == (8, 4096)


async def test_the_grace_leaves_what_changed_just_now(store: Store) -> None:
    await plant(store)
    audit = ClaimAudit(store, grace_s=60)
    result = await audit.run_once()
    assert result.repaired == [] and sum(audit.repairs.values()) == 0
    assert sorted(await claimed(store, "h1")) == ["ghost", "moved", "ok"]


async def test_the_periodic_loop_repairs_and_stops(store: Store) -> None:
    await put_claims(store, "h1", "ghost")
    audit = ClaimAudit(store, grace_s=0)
    audit.start(0.05)
    try:
        for _ in range(200):
            if audit.repairs[ORPHAN]:  # counted after the repair's transaction: wait for the count
                break
            await asyncio.sleep(0.02)
    finally:
        await audit.stop()
    assert await claimed(store, "h1") == {} and audit.repairs[ORPHAN] == 1

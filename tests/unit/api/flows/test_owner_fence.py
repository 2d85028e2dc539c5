"""Ownership is a fence, not advice: a replica that stalled past its lease (another replica has
taken the server over) cannot write a step, and a replica whose session ends stops its drivers at
once, not at its next look at the lease."""

from __future__ import annotations

import asyncio

from services.api.flows.owners import FlowOwners
from services.api.flows.tasks import InstanceTasks
from services.core import instances, keys
from services.core.etcd import Store
from services.core.write_fence import FenceLost, WriteFence, fenced
from stratus.state.v1 import state_pb2
from tests.unit.api.flows.test_owners import Plans, put_server, settled


class SigningPlans(Plans):
    """Its flow also signs the record with the replica's name."""

    async def _flow(self, instance_id: str) -> None:
        self.runs.append(self._name)
        await self.gate.wait()

        def done(r: state_pb2.InstanceRecord) -> None:
            r.server.task_state = 0  # type: ignore[assignment]
            r.server.name = self._name

        await instances.update(self._store, instance_id, done)


async def no_drivers(owners: FlowOwners, timeout_s: float = 5.0) -> None:
    """Until ``owners`` drives nothing (polled: FlowOwners has no event for it)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while owners._driving:
        assert asyncio.get_running_loop().time() < deadline, f"still driving {owners._driving}"
        await asyncio.sleep(0.05)


def replica(store: Store, name: str, runs: list[str], gate: asyncio.Event) -> FlowOwners:
    owners = FlowOwners(store, InstanceTasks(), name, lease_ttl_s=2, scan_interval_s=0.2)
    owners.bind(SigningPlans(store, name, runs, gate))
    return owners


async def test_a_stalled_owner_cannot_write_once_another_replica_took_the_server_over(store: Store) -> None:
    runs: list[str] = []
    gate_a, gate_b = asyncio.Event(), asyncio.Event()
    a, b = replica(store, "api-1", runs, gate_a), replica(store, "api-2", runs, gate_b)
    try:
        await put_server(store, "s1")
        await a.kick("s1", "p")
        await asyncio.sleep(0.2)
        assert runs == ["api-1"]
        # api-1's loop stalls past its lease: its key lapses and api-2 takes the server over.
        await store.delete(keys.flow_owner("s1"))
        await b.kick("s1", "p")
        gate_b.set()
        record = await settled(store, "s1")
        assert record.server.name == "api-2"
        gate_a.set()  # api-1 wakes and writes its step: refused, and its driver stops
        await no_drivers(a)
        record, _ = await instances.get(store, "s1")
        assert record.server.name == "api-2" and runs == ["api-1", "api-2"]
    finally:
        gate_a.set()
        gate_b.set()
        await a.stop(1)
        await b.stop(1)


async def test_a_replica_whose_session_ends_stops_its_drivers_at_once(store: Store) -> None:
    runs: list[str] = []
    gate = asyncio.Event()
    a = replica(store, "api-1", runs, gate)
    try:
        await put_server(store, "s2")
        await a.kick("s2", "p")
        await asyncio.sleep(0.2)
        assert a._driving == {"s2"}
        assert a._session is not None
        await store.revoke(a._session.lease_id)  # the lease is lost; no scan runs here
        await no_drivers(a)
    finally:
        gate.set()
        await a.stop(1)


async def test_every_kind_of_write_under_a_fence_that_no_longer_holds_is_refused(store: Store) -> None:
    await store.put("fence-key", b"mine")
    fence = WriteFence("fence-key", b"mine")
    with fenced(fence):
        await store.put("k", b"1")
        assert await store.swap("k", b"2", (await store.get("k")).mod_revision)  # type: ignore[union-attr]
    await store.put("fence-key", b"theirs")
    with fenced(fence):
        for write in (lambda: store.put("k", b"3"), lambda: store.delete("k"), lambda: store.delete_prefix("k"),
                      lambda: store.swap("k", b"4", 0)):  # fmt: skip
            try:
                await write()
            except FenceLost:
                continue
            raise AssertionError("a write landed under a fence that no longer holds")
    kv = await store.get("k")
    assert kv is not None and kv.value == b"2"

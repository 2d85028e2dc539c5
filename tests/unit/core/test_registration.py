"""Registration takes a host name in one transaction (real etcd): of two processes racing for one
name exactly one wins; a previous run's key is waited out; a re-registration after a lost lease
never takes a name another process took meanwhile."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.core.etcd import Store, is_lease_gone
from services.core.registration import DuplicateService, Registration

TTL_S = 2
OWNER = "services/compute/compute-7"


def registration(store: Store, who: bytes, **kwargs: object) -> Registration:
    return Registration(store, TTL_S, lambda: {OWNER: who, "hosts/compute-7/capabilities": who}, OWNER, **kwargs)  # type: ignore[arg-type]


async def test_two_processes_with_one_host_name_exactly_one_registers(store: Store) -> None:
    first, second = registration(store, b"first"), registration(store, b"second")
    outcomes = await asyncio.gather(first.start(), second.start(), return_exceptions=True)
    try:
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], DuplicateService), outcomes
        message = str(refused[0])
        assert "'compute-7'" in message and "pick another --host" in message
        winner = first if outcomes[0] is None else second
        owner = await store.get(OWNER)
        caps = await store.get("hosts/compute-7/capabilities")
        assert owner is not None and caps is not None and owner.value == caps.value  # one process's records
        assert winner.session is not None and owner.lease == winner.session.lease_id
    finally:
        await first.close()
        await second.close()
    assert await store.get(OWNER) is None  # the winner's close revoked its lease


async def test_a_previous_runs_key_is_waited_out(store: Store) -> None:
    lease = await store.grant(TTL_S)  # a run that died: its lease is not kept alive
    await store.put(OWNER, b"previous run", lease)
    again = registration(store, b"again")
    await again.start()
    try:
        owner = await store.get(OWNER)
        assert owner is not None and owner.value == b"again"
    finally:
        await again.close()


async def test_a_lost_lease_does_not_take_back_a_name_another_process_took(store: Store) -> None:
    conflict = asyncio.Event()
    mine = registration(store, b"mine", on_conflict=conflict.set)
    await mine.start()
    assert mine.session is not None
    other = await store.grant(30)
    try:
        await store.put(OWNER, b"another process", other)  # the name is someone else's now...
        await store.revoke(mine.session.lease_id)  # ...and this process's lease is gone
        await asyncio.wait_for(conflict.wait(), 30)
        assert mine.conflict is not None and "pick another --host" in mine.conflict
        owner = await store.get(OWNER)
        assert owner is not None and owner.value == b"another process" and owner.lease == other
    finally:
        await mine.close()
        await store.revoke(other)


async def test_a_lost_lease_registers_again_when_the_name_is_free(store: Store) -> None:
    mine = registration(store, b"mine")
    await mine.start()
    assert mine.session is not None
    lost = mine.session.lease_id
    await store.revoke(lost)
    for _ in range(300):
        owner = await store.get(OWNER)
        if owner is not None and owner.lease not in (0, lost):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("did not register again")
    await mine.close()


async def test_a_write_on_an_expired_lease_is_told_apart(store: Store) -> None:
    """What an etcd frozen past a lease's TTL leaves a registration with: a new lease is the cure."""
    lease = await store.grant(2)
    await store.revoke(lease)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.put("k", b"v", lease)
    assert is_lease_gone(info.value)
    assert not is_lease_gone(grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, None, None, "key not found"))

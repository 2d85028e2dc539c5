"""The one retry of a compare-and-swap (core/retry.py) and the one backoff (core/backoff.py): bounded
attempts with jittered pauses between them, a stated give-up, nothing written for a change of
nothing, and a write that compares the revision its value was read at (real etcd)."""

from __future__ import annotations

import asyncio
import itertools
import json
from types import SimpleNamespace

import pytest

from services.core import retry
from services.core.backoff import FULL_JITTER, RACE_S, backoff
from services.core.errors import Aborted, NotFound
from services.core.etcd import Store


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the retry takes, recorded instead of slept."""
    taken: list[float] = []

    async def sleep(delay: float) -> None:
        taken.append(delay)

    monkeypatch.setattr(retry, "asyncio", SimpleNamespace(sleep=sleep))  # retry's own, not the event loop's
    return taken


# ---- backoff ---------------------------------------------------------------------------------
@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, FULL_JITTER])
def test_each_delay_is_within_its_jitter_of_a_step_that_doubles_to_the_cap(jitter: float) -> None:
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for _ in range(50):
        delays = list(itertools.islice(backoff(0.1, 1.0, jitter=jitter), len(steps)))
        assert all((1 - jitter) * step <= d <= step for d, step in zip(delays, steps, strict=True))


def test_full_jitter_spreads_the_delays_down_to_zero() -> None:
    firsts = [next(backoff(1.0, 1.0, jitter=FULL_JITTER)) for _ in range(200)]
    assert min(firsts) < 0.25 and max(firsts) > 0.75


# ---- until_done --------------------------------------------------------------------------------
async def test_a_race_lost_every_time_gives_up_after_the_bound_naming_what(pauses: list[float]) -> None:
    calls = 0

    async def attempt() -> retry.Again:
        nonlocal calls
        calls += 1
        return retry.AGAIN

    with pytest.raises(retry.TooFast) as caught:
        await retry.until_done(attempt, what="server s1", attempts=7)
    assert calls == 7
    assert caught.value.message == "server s1 is changing too fast; try again"
    assert isinstance(caught.value, Aborted) and caught.value.reason == "CONFLICT"  # ABORTED to a client
    assert len(pauses) == 6  # one before each retry, none before the first attempt nor after the last


async def test_the_give_up_carries_the_reason_given(pauses: list[float]) -> None:
    async def attempt() -> retry.Again:
        return retry.AGAIN

    with pytest.raises(retry.TooFast) as caught:
        await retry.until_done(attempt, what="the quota usage of project p", attempts=2, reason="QUOTA_BUSY")
    assert caught.value.reason == "QUOTA_BUSY"


async def test_the_pauses_are_short_fully_jittered_and_capped(pauses: list[float]) -> None:
    async def attempt() -> retry.Again:
        return retry.AGAIN

    with pytest.raises(retry.TooFast):
        await retry.until_done(attempt, what="x", attempts=retry.MAX_ATTEMPTS)
    first, cap = RACE_S
    steps = [min(first * 2**n, cap) for n in range(len(pauses))]
    assert len(pauses) == retry.MAX_ATTEMPTS - 1
    assert all(0 <= p <= step for p, step in zip(pauses, steps, strict=True))
    assert sum(pauses) <= cap * retry.MAX_ATTEMPTS  # the whole retry stays within a few seconds


async def test_the_first_answer_that_is_not_again_is_returned_even_none(pauses: list[float]) -> None:
    answers: list[retry.Again | str | None] = [retry.AGAIN, retry.AGAIN, None, "never"]

    async def attempt() -> retry.Again | str | None:
        return answers.pop(0)

    assert await retry.until_done(attempt, what="x") is None
    assert answers == ["never"] and len(pauses) == 2


async def test_a_refusal_is_raised_at_once_not_retried(pauses: list[float]) -> None:
    calls = 0

    async def attempt() -> retry.Again:
        nonlocal calls
        calls += 1
        raise NotFound("server", "s1")

    with pytest.raises(NotFound):
        await retry.until_done(attempt, what="x")
    assert calls == 1 and pauses == []


# ---- swap --------------------------------------------------------------------------------------
async def test_a_change_of_nothing_writes_nothing(pauses: list[float]) -> None:
    writes: list[object] = []

    async def read() -> tuple[dict[str, int], int]:
        return {"n": 1}, 7

    async def write(value: dict[str, int], revision: int) -> bool:
        writes.append((value, revision))
        return True

    assert await retry.swap(read, lambda value: False, write, what="x") == {"n": 1}
    assert writes == [] and pauses == []


async def test_the_write_is_given_the_revision_its_value_was_read_at(pauses: list[float]) -> None:
    revisions = iter([3, 5, 9])
    seen: list[tuple[int, int]] = []

    async def read() -> tuple[dict[str, int], int]:
        revision = next(revisions)
        return {"read_at": revision}, revision

    async def write(value: dict[str, int], revision: int) -> bool:
        seen.append((value["read_at"], revision))
        return revision == 9  # the first two lost their race

    assert await retry.swap(read, lambda value: None, write, what="x") == {"read_at": 9}
    assert seen == [(3, 3), (5, 5), (9, 9)]


async def test_a_swap_that_loses_to_a_write_between_its_read_and_its_write_reads_again(store: Store) -> None:
    key = "counter"
    await store.put(key, json.dumps({"n": 0}).encode())
    reads = 0

    async def read() -> tuple[dict[str, int], int]:
        nonlocal reads
        reads += 1
        kv = await store.get(key)
        assert kv is not None
        if reads == 1:  # someone else writes after this read: its revision no longer holds
            await store.put(key, json.dumps({"n": 10}).encode())
        return json.loads(kv.value), kv.mod_revision

    def add_one(value: dict[str, int]) -> None:
        value["n"] += 1

    async def write(value: dict[str, int], revision: int) -> bool:
        return await store.swap(key, json.dumps(value).encode(), revision)

    assert await retry.swap(read, add_one, write, what="the counter") == {"n": 11}
    kv = await store.get(key)
    assert kv is not None and json.loads(kv.value) == {"n": 11} and reads == 2


async def test_concurrent_swaps_all_land_once_each(store: Store) -> None:
    key = "counter"
    await store.put(key, json.dumps({"n": 0}).encode())

    async def read() -> tuple[dict[str, int], int]:
        kv = await store.get(key)
        assert kv is not None
        return json.loads(kv.value), kv.mod_revision

    def add_one(value: dict[str, int]) -> None:
        value["n"] += 1

    async def write(value: dict[str, int], revision: int) -> bool:
        return await store.swap(key, json.dumps(value).encode(), revision)

    await asyncio.gather(*(retry.swap(read, add_one, write, what="the counter") for _ in range(20)))
    kv = await store.get(key)
    assert kv is not None and json.loads(kv.value) == {"n": 20}

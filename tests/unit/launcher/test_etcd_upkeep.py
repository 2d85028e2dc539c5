"""The launcher's upkeep of its etcd: when it defragments (routine: every interval, only members
worth it), in what order (followers first, the leader last), never two members at once, and how
it gets out of NOSPACE (compact, defragment, disarm once the data fits) -- against a fake cluster
and against a real etcd with a tiny quota."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from etcd3aio import EtcdConnectionError
from typer.testing import CliRunner

from services.cli.main import app
from services.core.etcd import Store
from services.core.etcd_maint import NOSPACE, Alarm, Member, MemberStatus
from services.core.etcd_members import ClusterMaintenance
from services.launcher.etcd_proc import DEFAULT_QUOTA_BYTES, EtcdPorts, etcd_argv
from services.launcher.etcd_upkeep import EtcdUpkeep, UpkeepPolicy, local_etcd_upkeep, worth_defragmenting
from services.launcher.options import StackOptions, parse_size
from services.launcher.plan import plan_etcd
from tests.support.etcd_fill import FILLER, fill_until_full
from tests.support.etcd_server import EtcdServer, start_etcd

MiB = 1 << 20


class FakeCluster:
    """Members by name; a defragmentation takes a moment and leaves only the data in use."""

    def __init__(self, sizes: dict[str, tuple[int, int]], leader: str, alarms: list[str] | None = None) -> None:
        self.member = {name: Member(i + 1, name, (f"http://{name}:2379",)) for i, name in enumerate(sizes)}
        leader_id = self.member[leader].id
        self.status = {name: MemberStatus(self.member[name].id, leader_id, size, used)
                       for name, (size, used) in sizes.items()}  # fmt: skip
        self.raised = [Alarm(self.member[name].id, NOSPACE) for name in alarms or []]
        self.defragmented: list[str] = []
        self.running = self.most_running = self.compactions = 0
        self.revision = 42  # moves with every change (a delete, say)

    async def alarms(self) -> list[Alarm]:
        return list(self.raised)

    async def members(self) -> list[Member]:
        return list(self.member.values())

    async def statuses(self) -> list[tuple[Member, MemberStatus]]:
        return [(self.member[name], status) for name, status in self.status.items()]

    async def defragment(self, member: Member) -> MemberStatus:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        self.defragmented.append(member.name)
        status = self.status[member.name]
        self.status[member.name] = replace(status, db_size=status.db_size_in_use)
        return self.status[member.name]

    async def compact_now(self) -> int:
        self.compactions += 1
        return self.revision

    async def disarm(self, kind: str = NOSPACE) -> list[Alarm]:
        cleared, self.raised = self.raised, []
        return cleared


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def upkeep(cluster: FakeCluster, clock: Clock, **policy: float) -> EtcdUpkeep:
    return EtcdUpkeep(cluster, UpkeepPolicy(**policy), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


# ---- routine defragmentation ---------------------------------------------------------------------
def test_a_member_is_worth_defragmenting_for_enough_free_pages_in_bytes_and_share() -> None:
    policy = UpkeepPolicy(min_free_bytes=16 * MiB, free_ratio=0.25)
    assert worth_defragmenting(MemberStatus(1, 1, 100 * MiB, 70 * MiB), policy)
    assert not worth_defragmenting(MemberStatus(1, 1, 100 * MiB, 80 * MiB), policy)  # 20%: not the share
    assert not worth_defragmenting(MemberStatus(1, 1, 20 * MiB, 5 * MiB), policy)  # 75%, but 15 MiB


async def test_every_interval_the_members_worth_it_one_at_a_time_leader_last() -> None:
    cluster = FakeCluster({"a": (400 * MiB, 100 * MiB), "b": (400 * MiB, 100 * MiB), "c": (400 * MiB, 390 * MiB),
                           "d": (300 * MiB, 50 * MiB)}, leader="a")  # fmt: skip
    clock = Clock()
    care = upkeep(cluster, clock, defrag_interval_s=3600, member_gap_s=5)
    await care.tick()
    assert cluster.defragmented == []  # not before the first interval
    clock.now += 3600
    await care.tick()
    assert cluster.defragmented == ["b", "d", "a"]  # c is not worth it; the leader goes last
    assert cluster.most_running == 1 and clock.slept == [5, 5]  # in turn, a pause between two
    clock.now += 1800
    await care.tick()
    assert cluster.defragmented == ["b", "d", "a"]  # the next round is an interval later


async def test_interval_zero_means_no_routine_defragmentation() -> None:
    cluster = FakeCluster({"a": (400 * MiB, 10 * MiB)}, leader="a")
    clock = Clock()
    care = upkeep(cluster, clock, defrag_interval_s=0)
    clock.now += 10**6
    await care.tick()
    assert cluster.defragmented == []


# ---- getting out of NOSPACE ------------------------------------------------------------------------
async def test_nospace_compacts_defragments_and_disarms_once_the_data_fits() -> None:
    cluster = FakeCluster({"a": (1000, 500), "b": (1000, 500), "c": (700, 700)}, leader="a", alarms=["a"])
    clock = Clock()
    await upkeep(cluster, clock, quota_bytes=1000, disarm_below=0.8, member_gap_s=1).tick()
    assert cluster.compactions == 1
    assert cluster.defragmented == ["b", "a"] and cluster.most_running == 1  # c already fits in 800
    assert clock.slept == [1] and cluster.raised == []


async def test_data_that_does_not_fit_keeps_the_alarm_and_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster({"a": (1000, 900)}, leader="a", alarms=["a"])
    care = upkeep(cluster, Clock(), quota_bytes=1000, disarm_below=0.8)
    with caplog.at_level(logging.ERROR, logger="stratus.up"):
        await care.tick()
        await care.tick()
    assert cluster.defragmented == ["a"]  # once: the second look found nothing changed
    assert [a.kind for a in cluster.raised] == [NOSPACE] and cluster.compactions == 2
    said = [r.getMessage() for r in caplog.records]
    assert sum("is out of space" in m for m in said) == 1 and sum("does not fit" in m for m in said) == 1
    cluster.status["a"] = MemberStatus(1, 1, 1000, 100)  # an operator freed space: the revision moved
    cluster.revision += 1
    await care.tick()
    assert cluster.defragmented == ["a", "a"] and cluster.raised == []


async def test_the_loop_waits_out_an_etcd_that_does_not_answer_and_ends_with_the_stack() -> None:
    stop = asyncio.Event()
    cluster = FakeCluster({"a": (1, 1)}, leader="a")
    looks = 0

    async def alarms() -> list[Alarm]:
        nonlocal looks
        looks += 1
        if looks == 1:
            raise EtcdConnectionError("Maintenance.Alarm failed after 3 attempts: UNAVAILABLE")
        stop.set()
        return []

    cluster.alarms = alarms  # type: ignore[method-assign]
    await asyncio.wait_for(upkeep(cluster, Clock(), alarm_poll_s=0.01).run(stop), 5)
    assert looks == 2


async def test_a_bug_is_not_swallowed() -> None:
    cluster = FakeCluster({"a": (1, 1)}, leader="a")

    async def alarms() -> list[Alarm]:
        raise ValueError("a bug")

    cluster.alarms = alarms  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="a bug"):
        await upkeep(cluster, Clock(), alarm_poll_s=0.01).run(asyncio.Event())


# ---- the launcher's etcd: its flags and options -----------------------------------------------------
def test_the_local_etcd_gets_a_quota_and_keeps_compacting() -> None:
    argv = etcd_argv("/usr/bin/etcd", Path("/s/etcd"), EtcdPorts(2379, 2380))
    assert argv[argv.index("--quota-backend-bytes") + 1] == str(DEFAULT_QUOTA_BYTES) == str(2 << 30)
    assert argv[argv.index("--auto-compaction-mode") + 1] == "periodic"
    opts = StackOptions(state_dir=Path("/s"), etcd_quota_bytes=64 * MiB)
    planned = plan_etcd(opts, "/usr/bin/etcd", Path("/s/etcd"), EtcdPorts(2379, 2380)).argv(0)
    assert planned[planned.index("--quota-backend-bytes") + 1] == str(64 * MiB)


def test_sizes_take_binary_units() -> None:
    assert parse_size("2GiB") == 2 << 30 and parse_size("512m") == 512 * MiB and parse_size("4096") == 4096
    for bad in ("", "0", "1.5G", "12 parsecs", "-1"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_up_refuses_etcd_limits_for_an_external_cluster_and_bad_sizes() -> None:
    runner = CliRunner()

    def said(output: str) -> str:  # the words of a message in rich's box, however it wrapped them
        return " ".join(re.sub(r"[\u2500-\u257f]", " ", output).split())

    external = runner.invoke(app, ["up", "--etcd", "http://127.0.0.1:2379", "--etcd-quota-bytes", "1GiB"])
    assert external.exit_code == 2 and "for the local etcd" in said(external.output)
    bad = runner.invoke(app, ["up", "--etcd-quota-bytes", "lots"])
    assert bad.exit_code == 2 and "expected a size" in said(bad.output)


def test_the_stack_options_set_the_policy() -> None:
    opts = StackOptions(state_dir=Path("/s"), etcd_quota_bytes=64 * MiB, etcd_defrag_interval_s=0)
    policy = local_etcd_upkeep(Store(["127.0.0.1:1"]), opts)._policy
    assert policy.quota_bytes == 64 * MiB and policy.defrag_interval_s == 0
    default = local_etcd_upkeep(Store(["127.0.0.1:1"]), StackOptions(state_dir=Path("/s")))._policy
    assert default.quota_bytes == DEFAULT_QUOTA_BYTES and default.defrag_interval_s == 3600


# ---- a real etcd ------------------------------------------------------------------------------------
@pytest.fixture
def tiny_etcd() -> Iterator[EtcdServer]:
    server = start_etcd(extra_args=["--quota-backend-bytes", str(8 * MiB)])
    yield server
    server.stop()


async def test_a_real_etcd_out_of_space_is_disarmed_once_space_is_freed(tiny_etcd: EtcdServer) -> None:
    store = Store([tiny_etcd.client_url], prefix="/upkeep/")
    await store.connect()
    try:
        await fill_until_full(store)
        care = EtcdUpkeep(ClusterMaintenance(store), UpkeepPolicy(quota_bytes=8 * MiB))
        await care.tick()
        assert [a.kind for a in await store.alarms()] == [NOSPACE]  # the filler is data, not history
        await store.delete_prefix(FILLER)
        await care.tick()
        assert await store.alarms() == []
        await store.put("probe", b"written")
    finally:
        await store.close()

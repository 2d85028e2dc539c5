"""``stratus etcd status|disarm`` against a real etcd with a tiny quota: the status shows NOSPACE,
and after space is freed ``disarm`` (compact, defragment, disarm) gets etcd writing again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.etcd import Store
from services.core.etcd_maint import NOSPACE
from services.launcher.stackfile import StackInfo, write_stack
from tests.support.etcd_fill import FILLER, fill_until_full
from tests.support.etcd_server import EtcdServer, start_etcd

runner = CliRunner()


@pytest.fixture
def full_etcd() -> Iterator[EtcdServer]:
    server = start_etcd(extra_args=["--quota-backend-bytes", str(8 << 20)])
    asyncio.run(_on(server, fill_until_full))
    yield server
    server.stop()


async def _on(server: EtcdServer, work: Callable[[Store], Awaitable[object]]) -> None:
    store = Store([server.client_url], prefix="/cli/")
    await store.connect()
    try:
        await work(store)
    finally:
        await store.close()


async def _free(store: Store) -> None:
    await store.delete_prefix(FILLER)


async def _put(store: Store) -> None:
    await store.put("probe", b"written")


def test_status_shows_each_member_and_the_nospace_alarm(full_etcd: EtcdServer) -> None:
    result = runner.invoke(app, ["etcd", "status", "--etcd", full_etcd.client_url, "-f", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["member"] == "test" and row["endpoint"] == full_etcd.client_url and row["leader"] is True
    assert row["alarms"] == [NOSPACE] and row["db_size"] >= row["db_size_in_use"] > 0
    assert "etcd member test" in result.stderr and "is out of space" in result.stderr


def test_disarm_after_freeing_space_gets_etcd_writing_again(full_etcd: EtcdServer, tmp_path: Path) -> None:
    asyncio.run(_on(full_etcd, _free))
    write_stack(tmp_path / "stack.json", StackInfo(api="127.0.0.1:1", etcd=[full_etcd.client_url], token="t",
                                                   demo_token="d", state_dir=str(tmp_path)))  # fmt: skip
    result = runner.invoke(app, ["etcd", "disarm", "--state-dir", str(tmp_path)])  # the URLs from stack.json
    assert result.exit_code == 0, result.output
    assert "compacted etcd's history" in result.stdout and "defragmented test" in result.stdout
    assert "disarmed NOSPACE" in result.stdout
    asyncio.run(_on(full_etcd, _put))
    again = runner.invoke(app, ["etcd", "disarm", "--etcd", full_etcd.client_url, "--no-compact", "--no-defrag"])
    assert again.exit_code == 0 and "no NOSPACE alarm was raised" in again.stdout


def test_no_etcd_to_talk_to_says_how_to_name_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["etcd", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "pass --etcd URL" in result.stderr


def test_an_etcd_that_does_not_answer_is_an_error_not_a_traceback() -> None:
    result = runner.invoke(app, ["etcd", "status", "--etcd", "http://127.0.0.1:1"])
    assert result.exit_code == 1 and "did not answer" in result.stderr

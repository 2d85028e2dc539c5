"""Scheduler options: settings, the watched options file (good, then bad, then good again), and
the chains built from them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.core.etcd import Store
from services.scheduler.chains import EngineConfig, engine_config
from services.scheduler.filters.core import CoreFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.main import build
from services.scheduler.options import OptionsWatcher
from services.scheduler.options_model import DEFAULT_FILTERS, DEFAULT_WEIGHERS, SchedulerOptions
from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers.ram import RamWeigher


def write(path: Path, content: Any) -> None:
    """Writes the file and moves its mtime on, so a change is seen even within one clock tick."""
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    stat = path.stat()
    bump = getattr(write, "bump", 0) + 1
    write.bump = bump  # type: ignore[attr-defined]
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


def ram(config: EngineConfig) -> tuple[float, float]:
    """(RamFilter's ratio, RamWeigher's multiplier) in the config."""
    (flt,) = [f for f in config.filters if isinstance(f, RamFilter)]
    (weigher,) = [w for w in config.weighers if isinstance(w, RamWeigher)]
    return flt.ratio, weigher.multiplier


def base() -> dict[str, Any]:
    return SchedulerOptions().option_values()


def test_defaults_are_novas() -> None:
    settings = SchedulerSettings(host="s1")
    assert settings.enabled_filters == DEFAULT_FILTERS and settings.weighers == DEFAULT_WEIGHERS
    assert (settings.cpu_allocation_ratio, settings.ram_allocation_ratio, settings.disk_allocation_ratio) == (4, 1, 1)
    assert (settings.host_subset_size, settings.max_instances_per_host, settings.max_io_ops_per_host) == (1, 50, 8)
    assert settings.restrict_isolated_hosts_to_isolated_images and settings.isolated_hosts == []
    assert settings.build_failure_weight_multiplier == 1_000_000.0
    assert settings.scheduler_driver == "filter" and settings.options_file is None
    config = engine_config(settings.option_values())
    assert [f.name for f in config.filters] == DEFAULT_FILTERS
    weights = {w.name: w.multiplier for w in config.weighers}
    assert weights["IoOpsWeigher"] == -1.0 and weights["NumInstancesWeigher"] == 0.0
    assert weights["BuildFailureWeigher"] == 1_000_000.0
    assert [f.ratio for f in config.filters if isinstance(f, CoreFilter)] == [4.0]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cpu_allocation_ratio": 0}, "cpu_allocation_ratio"),
        ({"host_subset_size": 0}, "host_subset_size"),
        ({"scheduler_driver": "random"}, "scheduler_driver"),
        ({"enabled_filters": "RamFilter,Nope"}, r"unknown scheduler filter\(s\) 'Nope'"),
        ({"weighers": ["Nope"]}, r"unknown scheduler weigher\(s\) 'Nope'"),
        ({"weight_multipliers": "Nope=1"}, r"unknown scheduler weigher\(s\) 'Nope'"),
        ({"max_io_ops_per_host": -1}, "max_io_ops_per_host"),
        ({"ram_allocation_ratio": float("inf")}, "finite"),
    ],
)
def test_bad_settings_refuse_to_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SchedulerSettings(host="s1", **values)


def test_settings_reach_the_chains() -> None:
    settings = SchedulerSettings(host="s1", ram_allocation_ratio=1.5, weight_multipliers={"RamWeigher": -2})
    assert ram(engine_config(settings.option_values())) == (1.5, -2.0)


def test_without_a_file_the_settings_hold(tmp_path: Path) -> None:
    watcher = OptionsWatcher(base(), tmp_path / "absent.json")
    assert ram(watcher.config) == (1.0, 1.0)
    assert not watcher.check()


def test_options_file_reload_good_then_bad_then_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "scheduler.json"
    write(path, {"ram_allocation_ratio": 2.0, "ram_weight_multiplier": -1, "host_subset_size": 3})
    changes: list[EngineConfig] = []
    watcher = OptionsWatcher(base(), path, on_change=changes.append)
    assert ram(watcher.config) == (2.0, -1.0) and watcher.config.host_subset_size == 3
    assert not watcher.check()  # unchanged

    good = watcher.config
    bad_files = [
        ("{not json", "not valid JSON"),
        ('["a list"]', "must hold a JSON object"),
        ({"bogus_option": 1}, "unknown option(s) 'bogus_option'"),
        ({"cpu_allocation_ratio": -4}, "cpu_allocation_ratio"),
        ({"ram_weight_multiplier": "heavy"}, "ram_weight_multiplier"),
        ({"enabled_filters": ["RamFilter", "NoSuchFilter"]}, "NoSuchFilter"),
        ({"max_instances_per_host": "many"}, "max_instances_per_host"),
    ]
    caplog.set_level(logging.ERROR, logger="services.scheduler.options")
    for content, why in bad_files:
        write(path, content)
        assert not watcher.check()
        assert watcher.config is good, content
        assert why in watcher.last_error
        assert "keeping the last good options" in caplog.text and why in caplog.text
        caplog.clear()

    write(path, {"ram_allocation_ratio": 0.5})
    assert watcher.check()
    assert ram(watcher.config) == (0.5, 1.0) and watcher.config.host_subset_size == 1
    assert watcher.last_error == "" and watcher.config.generation > good.generation
    assert [c.generation for c in changes] == [watcher.config.generation]

    path.unlink()
    assert watcher.check()
    assert ram(watcher.config) == (1.0, 1.0)


def test_a_bad_file_at_start_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.json"
    write(path, {"ram_allocation_ratio": "lots"})
    with pytest.raises(ValueError, match=r"scheduler options file .*scheduler.json: .*ram_allocation_ratio"):
        OptionsWatcher(base(), path)


def test_the_file_chooses_filters_and_the_driver(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.json"
    write(path, {"enabled_filters": ["ComputeFilter", "NumInstancesFilter"], "max_instances_per_host": 7,
                 "scheduler_driver": "chance", "weighers": ["RamWeigher"]})  # fmt: skip
    config = OptionsWatcher(base(), path).config
    assert [f.name for f in config.filters] == ["ComputeFilter", "NumInstancesFilter"]
    assert config.filters[1].max_instances == 7  # type: ignore[attr-defined]
    assert config.driver == "chance"
    assert [f.name for f in config.chance_filters] == ["ComputeFilter", "RetryFilter", "RamFilter", "CoreFilter",
                                                         "DiskFilter"]  # fmt: skip


async def test_the_watcher_task_picks_up_a_change(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.json"
    write(path, {"ram_allocation_ratio": 1.0})
    watcher = OptionsWatcher(base(), path, interval_s=0.02)
    await watcher.start()
    try:
        write(path, {"ram_allocation_ratio": 3.0})
        for _ in range(200):
            if ram(watcher.config)[0] == 3.0:
                break
            await asyncio.sleep(0.01)
        assert ram(watcher.config)[0] == 3.0
    finally:
        await watcher.stop()


def test_build_reads_the_options_file(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "scheduler.json"
    write(path, {"disk_allocation_ratio": 2.5})
    manager, _ = build(SchedulerSettings(host="s1", options_file=path), store)
    assert [f.ratio for f in manager.config.filters if f.name == "DiskFilter"] == [2.5]  # type: ignore[attr-defined]
    write(path, "{")
    with pytest.raises(ValueError, match="not valid JSON"):
        build(SchedulerSettings(host="s1", options_file=path), store)

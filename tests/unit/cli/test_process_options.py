"""``stratus api|scheduler|compute|servicegroup``: settings from flags, --set and files; bad ones exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import process_run
from services.cli.main import app
from services.cli.process_run import load_or_exit, merge_flags
from services.compute.settings import ComputeSettings

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_stratus_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRATUS_PORT", "STRATUS_LEASE_TTL_S", "STRATUS_ETCD", "STRATUS_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_a_port_out_of_range_is_one_clear_line_and_exit_2() -> None:
    result = runner.invoke(app, ["api", "--port", "70000"])
    assert result.exit_code == 2
    assert "bad setting port: Input should be less than or equal to 65535" in result.output


def test_every_bad_setting_gets_its_own_line() -> None:
    result = runner.invoke(app, ["compute", "--lease-ttl", "1", "--set", "fake_spawn_delay_s=-1"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("bad setting")]
    assert [line.split(":")[0] for line in lines] == ["bad setting lease_ttl_s", "bad setting fake_spawn_delay_s"]


def test_an_unknown_set_key_is_refused() -> None:
    result = runner.invoke(app, ["scheduler", "--set", "no_such_thing=1"])
    assert result.exit_code == 2
    assert "bad setting no_such_thing: Extra inputs are not permitted" in result.output


def test_a_set_item_without_equals_is_a_usage_error() -> None:
    result = runner.invoke(app, ["servicegroup", "--set", "oops"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output


def test_a_port_that_is_not_a_number_is_a_usage_error() -> None:
    result = runner.invoke(app, ["api", "--port", "http"])
    assert result.exit_code == 2


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["api", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "bad config file" in result.output


def test_flags_win_over_set_and_dashes_in_set_keys_read_as_underscores() -> None:
    merged = merge_flags(["port=1", "log-level=DEBUG"], {"port": 2, "host": None})
    assert merged == {"port": 2, "log_level": "DEBUG"}


def test_flags_win_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "stratus.toml"
    config.write_text('host = "from-file"\nport = 5\n[compute]\nfake_host = "vcpus=2,ram_mb=512,disk_gb=5"\n')
    settings = load_or_exit(ComputeSettings, config, merge_flags(["availability_zone=az9"], {"port": 7}))
    assert isinstance(settings, ComputeSettings)
    assert (settings.host, settings.port) == ("from-file", 7)
    assert (settings.fake_host, settings.availability_zone) == ("vcpus=2,ram_mb=512,disk_gb=5", "az9")


def test_process_flags_map_onto_setting_names(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, tuple[list[str] | None, dict[str, object]]] = {}

    def fake_run(binary: str, config: Path | None, sets: list[str] | None, flags: dict[str, object]) -> None:
        seen[binary] = (sets, {k: v for k, v in flags.items() if v is not None})

    monkeypatch.setattr(process_run, "run", fake_run)
    compute = ["compute", "--etcd", "http://a:1,http://b:2", "--lease-ttl", "4", "--fake-spawn-delay", "0.5"]
    assert runner.invoke(app, [*compute, "--fake-fail-spawn", "--availability-zone", "az2"]).exit_code == 0
    assert seen["compute"][1] == {
        "etcd": "http://a:1,http://b:2",
        "lease_ttl_s": 4,
        "fake_spawn_delay_s": 0.5,
        "fake_fail_spawn": True,
        "availability_zone": "az2",
    }
    assert runner.invoke(app, ["api", "--no-seed", "--max-build-attempts", "5", "--set", "drain_s=1"]).exit_code == 0
    assert seen["api"] == (["drain_s=1"], {"seed": False, "max_build_attempts": 5})

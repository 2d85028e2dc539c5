"""``stratus up`` options: the fake host size, etcd URLs, and bad input exiting 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.launcher.options import parse_etcd_urls, parse_fake_host

runner = CliRunner()


def test_a_fake_host_size_is_checked_and_normalised() -> None:
    assert parse_fake_host("disk_gb=10, vcpus=4,ram_mb=2048") == "vcpus=4,ram_mb=2048,disk_gb=10"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("vcpus=4,ram_mb=2048", "missing disk_gb"),
        ("vcpus=four,ram_mb=1,disk_gb=1", "whole number"),
        ("vcpus=0,ram_mb=1,disk_gb=1", "positive"),
        ("cpus=4,ram_mb=1,disk_gb=1", "expected"),
        ("", "missing"),
    ],
)
def test_a_bad_fake_host_size_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_fake_host(text)


def test_etcd_urls_are_split_and_get_a_scheme() -> None:
    assert parse_etcd_urls("http://a:1, b:2") == ("http://a:1", "http://b:2")
    with pytest.raises(ValueError):
        parse_etcd_urls(" , ")


@pytest.mark.parametrize(
    "args",
    [
        ["--computes", "0"],
        ["--schedulers", "-1"],
        ["--api-port", "70000"],
        ["--driver", "xen"],
        ["--fake-host", "vcpus=1"],
        ["--etcd", ","],
        ["--lease-ttl", "1"],
        ["--apis", "0"],
        ["--apis", "17"],
        ["--apis", "2", "--api-port", "65535"],  # api-2 would need port 65536
    ],
)
def test_bad_up_options_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, ["up", *args])
    assert result.exit_code == 2, result.output

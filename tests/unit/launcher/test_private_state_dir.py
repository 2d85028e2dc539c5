"""``stratus up`` makes its state dir private before anything else (services/launcher/command.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.launcher.command import private_state_dir
from services.launcher.options import LaunchError


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """private_state_dir sets the process's umask: this test run's is put back."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_an_old_state_dir_is_closed_with_all_in_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    state.chmod(0o755)
    (state / "logs" / "etcd.log").write_text("x")
    (state / "logs" / "etcd.log").chmod(0o644)
    private_state_dir(state)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (state, state / "logs", state / "logs" / "etcd.log")] == [
        0o700, 0o700, 0o600,
    ]  # fmt: skip
    assert os.umask(0o022) == 0o077  # and what the launcher and its children write from now on is 0600


@pytest.mark.parametrize("shared", [Path.home(), Path("/")])
def test_a_home_or_root_state_dir_is_refused_untouched(shared: Path) -> None:
    before = shared.stat().st_mode
    with pytest.raises(LaunchError, match="a directory of its own"):
        private_state_dir(shared.resolve())
    assert shared.stat().st_mode == before


def test_a_shared_sticky_state_dir_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(LaunchError, match="shared directory"):
        private_state_dir(shared)

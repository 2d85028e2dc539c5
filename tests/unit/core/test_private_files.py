"""services/core/private_files.py: umask 077, private directories, and an old state dir put right."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.private_files import SharedDirError, make_private, private_dir, tighten_tree


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual 022 for the test, whatever the process had; restored afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_private_dir_creates_it_and_its_missing_parents_0700(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert private_dir(target) == target
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3


def test_private_dir_tightens_an_existing_one_and_leaves_its_parent(tmp_path: Path, open_umask: None) -> None:
    parent = tmp_path / "home"
    target = parent / "state"
    target.mkdir(parents=True)
    parent.chmod(0o755)
    target.chmod(0o775)
    private_dir(target)
    assert mode(target) == 0o700
    assert mode(parent) == 0o755  # not ours to close: a home directory, /var/lib, ...


def test_private_dir_refuses_a_shared_sticky_directory(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(SharedDirError, match="shared directory"):
        private_dir(shared)
    assert mode(shared) == 0o1777


def test_tighten_tree_closes_everything_an_old_release_left_open(tmp_path: Path) -> None:
    root = tmp_path / "state"
    (root / "logs").mkdir(parents=True)
    (root / "images").mkdir()
    for path, bits in [(root, 0o755), (root / "logs", 0o755), (root / "images", 0o770)]:
        path.chmod(bits)
    (root / "logs" / "api-1.log").write_text("x")
    (root / "logs" / "api-1.log").chmod(0o644)
    (root / "images" / "img").write_text("x")
    (root / "images" / "img").chmod(0o664)
    (root / "tokens.json").write_text("{}")
    (root / "tokens.json").chmod(0o600)
    (root / "outside").symlink_to(tmp_path)  # followed by nothing, changed by nothing
    tmp_path.chmod(0o755)
    changed = tighten_tree(root)
    assert sorted(changed) == sorted([root, root / "logs", root / "images", root / "logs" / "api-1.log",
                                      root / "images" / "img"])  # fmt: skip
    assert {mode(p) for p in changed} == {0o700, 0o600}
    assert mode(root / "tokens.json") == 0o600
    assert mode(tmp_path) == 0o755
    assert tighten_tree(root) == []


def test_make_private_sets_umask_077_for_the_process_and_its_children(tmp_path: Path) -> None:
    # In a child of its own: the umask is process-wide, and this test run's must stay as it is.
    code = (
        "import os, subprocess, sys; from pathlib import Path\n"
        "from services.core.private_files import make_private\n"
        "make_private(Path(sys.argv[1]) / 'state')\n"
        "(Path(sys.argv[1]) / 'state' / 'mine').write_text('x')\n"
        "subprocess.run(['touch', str(Path(sys.argv[1]) / 'state' / 'childs')], check=True)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).resolve().parents[3])
    state = tmp_path / "state"
    assert (mode(state), mode(state / "mine"), mode(state / "childs")) == (0o700, 0o600, 0o600)


def test_make_private_without_a_state_dir_only_sets_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        make_private()
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)


def test_private_dir_on_a_file_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    path.chmod(0o644)
    with pytest.raises(NotADirectoryError):
        private_dir(path)
    assert mode(path) == 0o644

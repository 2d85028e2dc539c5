"""Files only this user can read: guest disks, config drives (user data, SSH keys), images, tokens,
keys and logs.

Every process (and every child it starts: etcd, qemu-img, genisoimage) runs with umask 077, so
what it creates is 0600 (files) or 0700 (directories). The directories that hold such files are
also made 0700 explicitly (``private_dir``), so that they fence their contents off whatever the
umask; and ``tighten_tree`` puts right a state dir left open by an older release.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
OPEN_BITS = 0o077  # group and others


class SharedDirError(OSError):
    """A directory others share (sticky, like /tmp) cannot be made private: give one of its own."""


def make_private(state_dir: Path | None = None) -> None:
    """Sets umask 077 for this process and its future children; ``state_dir`` is made private too."""
    os.umask(PRIVATE_UMASK)
    if state_dir is not None:
        private_dir(state_dir)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter: missing ones (parents too) are created 0700
    and an existing one loses its group and other bits. Returns ``path``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile, by a peer process on the same host
            continue
    _tighten_dir(path)
    return path


def _tighten_dir(path: Path) -> None:
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX:
        raise SharedDirError(f"{path} is a shared directory (sticky bit set); give a directory of its own")
    if mode & OPEN_BITS:
        os.chmod(path, mode & ~OPEN_BITS)


def tighten_tree(root: Path) -> list[Path]:
    """Removes group and other bits from ``root`` and every file and directory under it owned by
    this user (symbolic links are neither followed nor changed); the paths changed."""
    changed: list[Path] = []
    uid = os.geteuid()
    _tighten_one(root, uid, changed)  # first: a walk that fails half way has closed the door already
    for top, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            _tighten_one(Path(top) / name, uid, changed)
    return changed


def _tighten_one(path: Path, uid: int, changed: list[Path]) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:  # removed while we walked
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not st.st_mode & OPEN_BITS:
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~OPEN_BITS)
    except FileNotFoundError:
        return
    changed.append(path)

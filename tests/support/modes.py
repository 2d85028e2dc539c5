"""File modes: what under a directory group or others may read, write or enter."""

from __future__ import annotations

import stat
from pathlib import Path

from services.core.private_files import OPEN_BITS


def open_to_others(root: Path) -> list[str]:
    """Every file and directory under ``root`` (``root`` too) that group or others may use, with its mode."""
    paths = [root, *root.rglob("*")]
    return [f"{oct(stat.S_IMODE(st.st_mode))} {p.relative_to(root.parent)}"
            for p in paths if not stat.S_ISLNK((st := p.lstat()).st_mode) and st.st_mode & OPEN_BITS]  # fmt: skip

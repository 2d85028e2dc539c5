from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, start_stack

HOST_SIZE = "vcpus=8,ram_mb=8192,disk_gb=100"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the functional tests: 2 fake computes of a known size."""
    s = start_stack(Path(tmp_path_factory.mktemp("stack")), "--driver", "fake", "--computes", "2",
                    "--fake-host", HOST_SIZE)  # fmt: skip
    yield s
    assert s.stop() == 0, s.log_tail()

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.core import context
from tests.unit.api.images.uploads import ALICE


@pytest.fixture
def as_alice() -> Iterator[None]:
    token = context.bind(ALICE)
    yield
    context.unbind(token)

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from services.core.etcd import Store
from tests.support.etcd_server import EtcdServer, start_etcd


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    server = start_etcd()
    yield server
    server.stop()


@pytest.fixture
async def store(etcd_server: EtcdServer, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A Store under a prefix of its own, so tests never see each other's keys."""
    s = Store([etcd_server.client_url], prefix=f"/test/{request.node.name}/")
    await s.connect()
    yield s
    await s.delete_prefix("")
    await s.close()

"""The services_seen writer comes back after an unexpected failure of a write."""

from __future__ import annotations

import pytest

from services.core.etcd import Store
from services.servicegroup.seen import SeenWriter
from stratus.state.v1 import state_pb2
from tests.support.supervision import FailOnce, Restarts, fast_restarts


async def test_a_write_that_fails_unexpectedly_does_not_stop_the_writer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_restarts(monkeypatch)
    writer = SeenWriter(store)
    put = FailOnce(writer._put)
    monkeypatch.setattr(writer, "_put", put)
    restarts = Restarts("services-seen-writer")
    writer.start()
    try:
        writer.write("services_seen/compute/c-1", state_pb2.ServiceSeen())  # its write fails
        writer.write("services_seen/compute/c-2", state_pb2.ServiceSeen())
        await restarts.wait()
        await writer.flush()  # the failed record was counted done: the queue drains
        assert await store.get("services_seen/compute/c-1") is None
        assert await store.get("services_seen/compute/c-2") is not None and put.calls == 2
    finally:
        await writer.stop()

"""Exact claims through the public API: creates, deletes racing builds, and builds that fail on a
host and are retried elsewhere, while the claims audit runs against the stack's etcd the whole
time and once after: it never has anything to repair (a server holds a claim exactly when its
record names the host, whatever moment it looks at)."""

from __future__ import annotations

import asyncio
import threading
import uuid

from services.api.admin.claim_audit import AuditResult, ClaimAudit, Finding
from services.core import instances
from stratus.v1 import servers_pb2, services_pb2
from tests.functional.conftest import list_hosts
from tests.support.stack import Stack

UP = services_pb2.ServiceState.SERVICE_STATE_UP


class AuditAlongside:
    """Audits (no grace) in a thread of its own until stopped; every round's result."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.results: list[AuditResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        store = self._stack.etcd_store()
        await store.connect()
        try:
            audit = ClaimAudit(store, grace_s=0)
            while True:
                self.results.append(await audit.run_once())
                if self._stop.is_set():
                    return
                await asyncio.sleep(0.05)
        finally:
            await store.close()

    def __enter__(self) -> AuditAlongside:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)


async def tried_hosts(stack: Stack, ids: list[str]) -> list[list[str]]:
    """The hosts each build failed on, from the records."""
    store = stack.etcd_store()
    await store.connect()
    try:
        return [list((await instances.get(store, server_id))[0].tried_hosts) for server_id in ids]
    finally:
        await store.close()


async def final_check(stack: Stack) -> list[Finding]:
    store = stack.etcd_store()
    await store.connect()
    try:
        return await ClaimAudit(store, grace_s=0).check()
    finally:
        await store.close()


def create(stack: Stack, name: str) -> str:
    spec = servers_pb2.Server(name=name, flavor_id="m1.tiny", image_id="tiny")
    request = servers_pb2.CreateServerRequest(server=spec, request_id=str(uuid.uuid4()))
    return str(stack.servers.CreateServer(request, metadata=stack.md("demo")).id)


def test_creates_deletes_and_failed_builds_leave_the_audit_nothing(stack: Stack, failing_compute: str) -> None:
    md = stack.md("demo")
    with AuditAlongside(stack) as audit:
        first = create(stack, "exact-0")  # the failing host is the roomiest: it fails there first
        assert stack.wait_for_server(first, {"ACTIVE", "ERROR"}, who="demo").host != failing_compute
        assert asyncio.run(tried_hosts(stack, [first])) == [[failing_compute]]
        ids = [first, *(create(stack, f"exact-{i}") for i in range(1, 6))]
        for server_id in ids[-2:]:  # deleted while their builds run
            stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=md)
        for server_id in ids[:-2]:
            done = stack.wait_for_server(server_id, {"ACTIVE", "ERROR"}, who="demo")
            assert done.status == servers_pb2.ServerStatus.SERVER_STATUS_ACTIVE, done.fault
            assert done.host != failing_compute
        for server_id in ids[:-2]:
            stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server_id), metadata=md)
        for server_id in ids:
            stack.wait_gone(server_id)
    assert len(audit.results) >= 2  # it ran during the work and once after all of it
    assert [f for result in audit.results for f in result.repaired] == []
    assert asyncio.run(final_check(stack)) == []
    failing = next(h for h in list_hosts(stack) if h.host == failing_compute)
    assert failing.ram_mb_used == 0 and failing.running_servers == 0

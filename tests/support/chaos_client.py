"""The chaos run's client, as a real one behaves: a create that fails with UNAVAILABLE,
DEADLINE_EXCEEDED or ABORTED (a connection error is UNAVAILABLE) is sent again with the same
``request_id``, to the next api replica when ``stack.json`` lists several, after the server's
RetryInfo delay or a jittered backoff; a delete is sent again until the server is NOT_FOUND."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.core.tls import channel_credentials
from stratus.v1 import servers_pb2, servers_pb2_grpc
from tests.support.chaos_check import RID_KEY, Expected
from tests.support.chaos_report import ChaosPlan, ChaosReport

C = grpc.StatusCode
RETRYABLE = {C.UNAVAILABLE, C.DEADLINE_EXCEEDED, C.ABORTED}


class ApiPool:
    """aio channels to every api replica ``stack.json`` lists (re-read at most once a second)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._endpoints: list[str] = []
        self._ca = ""  # the stack's CA, from the same read of stack.json as the endpoints ("": plaintext)
        self._read_at = 0.0

    def endpoints(self) -> list[str]:
        if not self._endpoints or time.monotonic() - self._read_at > 1.0:
            try:
                info = json.loads((self.state_dir / "stack.json").read_text())
                apis = info.get("apis") or [info["api"]]
                self._endpoints = [a if isinstance(a, str) else str(a["endpoint"]) for a in apis]
                self._ca = str(info.get("ca_cert") or "")
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass  # the launcher is rewriting it; keep the last we read
            self._read_at = time.monotonic()
        return self._endpoints

    def servers(self, n: int) -> servers_pb2_grpc.ServersStub:
        eps = self.endpoints()
        ep = eps[n % len(eps)]
        if ep not in self._channels:
            self._channels[ep] = self._channel(ep)
        return servers_pb2_grpc.ServersStub(self._channels[ep])

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        """TLS trusting the stack's CA (stack.json), plaintext for an ``--insecure`` stack."""
        if not self._ca:
            return grpc.aio.insecure_channel(endpoint)
        return grpc.aio.secure_channel(endpoint, channel_credentials(Path(self._ca)))

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()


def retry_after(exc: grpc.aio.AioRpcError, attempt: int, rng: random.Random) -> float:
    """The server's RetryInfo delay if it gave one, else capped jittered exponential backoff."""
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except ValueError:
        status = None
    for detail in status.details if status else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds() / 1e9)
    return float(min(0.2 * 2**attempt, 2.0) * rng.uniform(0.5, 1.0))


class Client:
    def __init__(self, pool: ApiPool, token: str, plan: ChaosPlan, report: ChaosReport, rng: random.Random) -> None:
        self.pool = pool
        self.md = [("authorization", f"Bearer {token}")]
        self.plan = plan
        self.report = report
        self.rng = rng
        self.expected = Expected()

    async def create(self, n: int, rid: str) -> str:
        """The server id the api answered, or "" (refused for good, or given up)."""
        spec = servers_pb2.Server(
            name=rid, flavor_id=self.plan.flavor, image_id=self.plan.image, metadata={RID_KEY: rid}
        )
        req = servers_pb2.CreateServerRequest(server=spec, request_id=rid)
        deadline = time.monotonic() + self.plan.op_budget_s
        attempt = 0
        while True:
            try:
                reply = await self.pool.servers(n + attempt).CreateServer(
                    req, metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    self.report.refused[f"{exc.code().name}: {exc.details()}"[:120]] += 1
                    self.expected.unanswered.add(rid)
                    return ""
                self.report.retries[f"create {exc.code().name}"] += 1
                if time.monotonic() > deadline:
                    self.report.gave_up += 1
                    self.expected.unanswered.add(rid)
                    return ""
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            self.expected.replied[rid] = reply.id
            self.report.replied += 1
            return str(reply.id)

    async def delete(self, n: int, server_id: str, rid: str) -> None:
        deadline = time.monotonic() + self.plan.op_budget_s
        attempt = 0
        while time.monotonic() < deadline:
            try:
                await self.pool.servers(n + attempt).DeleteServer(
                    servers_pb2.DeleteServerRequest(id=server_id), metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == C.NOT_FOUND:
                    break
                self.report.retries[f"delete {exc.code().name}"] += 1
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            if await self._gone(n, server_id, min(20.0, max(0.0, deadline - time.monotonic()))):
                break
            attempt += 1
        else:
            self.expected.undeleted[server_id] = rid
            self.report.deletes_unfinished += 1
            return
        self.expected.deleted[server_id] = rid
        self.report.deletes_done += 1

    async def _gone(self, n: int, server_id: str, within_s: float) -> bool:
        """Polls GetServer until NOT_FOUND (True) or ``within_s`` passes (False)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                await self.pool.servers(n).GetServer(
                    servers_pb2.GetServerRequest(id=server_id), metadata=self.md, timeout=self.plan.call_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == C.NOT_FOUND:
                    return True
                n += 1  # another replica
            await asyncio.sleep(0.5)
        return False

    async def list_all(self) -> list[servers_pb2.Server]:
        """Every server of every project (admin), retried while the api answers UNAVAILABLE."""
        out: list[servers_pb2.Server] = []
        token, attempt = "", 0
        while True:
            req = servers_pb2.ListServersRequest(page_size=1000, page_token=token, all_projects=True)
            try:
                page = await self.pool.servers(attempt).ListServers(req, metadata=self.md, timeout=30)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt > 60:
                    raise
                await asyncio.sleep(retry_after(exc, attempt, self.rng))
                attempt += 1
                continue
            out += page.servers
            token = page.next_page_token
            if not token:
                return out

"""The one object the Servers manager hands work to: a method per flow, and the compute reads.
Once a flow is over its action is concluded from the record (services/api/action_log.py)."""

from __future__ import annotations

from services.api import action_log
from services.api.flows import delete, power, resize, snapshot
from services.api.flows.base import Deps, Limits
from services.api.flows.build import BuildFlow
from services.api.images import ImagesManager
from services.api.peers import Peers, call
from services.api.specs import SpecResolver
from services.core.etcd import Store
from stratus.compute.v1 import compute_pb2


class Orchestrator:
    def __init__(
        self, store: Store, peers: Peers, specs: SpecResolver, images: ImagesManager, limits: Limits | None = None
    ) -> None:
        self._deps = Deps(store, peers, specs, images, limits or Limits())
        self._build = BuildFlow(self._deps)

    async def build(self, instance_id: str) -> None:
        await self._build.run(instance_id)
        await self._conclude(instance_id, action_log.CREATE)

    async def delete(self, instance_id: str) -> None:
        await delete.delete(self._deps, instance_id)
        await self._conclude(instance_id, action_log.DELETE)

    async def power(self, instance_id: str, action: str) -> None:
        await power.power(self._deps, instance_id, action)
        await self._conclude(instance_id, action)

    async def resize(self, instance_id: str) -> None:
        await resize.resize(self._deps, instance_id)
        await self._conclude(instance_id, "resize")

    async def confirm_resize(self, instance_id: str) -> None:
        await resize.confirm(self._deps, instance_id)
        await self._conclude(instance_id, "confirm-resize")

    async def revert_resize(self, instance_id: str) -> None:
        await resize.revert(self._deps, instance_id)
        await self._conclude(instance_id, "revert-resize")

    async def settle_resize(self, instance_id: str) -> None:
        await resize.settle(self._deps, instance_id)

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        await snapshot.snapshot(self._deps, instance_id, image_id)
        await self._conclude(instance_id, "snapshot")

    async def resume_snapshot(self, instance_id: str) -> None:
        await snapshot.resume(self._deps, instance_id)
        await self._conclude(instance_id, "snapshot")

    async def _conclude(self, instance_id: str, name: str) -> None:
        await action_log.conclude(self._deps.store, instance_id, name)

    async def console_output(self, host: str, instance_id: str, lines: int) -> str:
        request = compute_pb2.GetConsoleOutputRequest(instance_id=instance_id, lines=lines)
        reply: compute_pb2.GetConsoleOutputResponse = await call(self._deps.compute(host).GetConsoleOutput, request)
        return reply.output

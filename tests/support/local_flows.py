"""A one-process stand-in for ``FlowOwners`` in the unit tests of the managers: each kick runs the
record's next flow once, with no ownership, no lease and no takeover."""

from __future__ import annotations

from services.api.flows.owners import Plans
from services.api.flows.tasks import InstanceTasks
from services.core import instances
from services.core.etcd import Store


class LocalFlows:
    def __init__(self, store: Store, tasks: InstanceTasks | None = None) -> None:
        self._store = store
        self.tasks = tasks or InstanceTasks()
        self._plans: Plans | None = None

    def bind(self, plans: Plans) -> None:
        self._plans = plans

    async def kick(self, instance_id: str, project_id: str) -> None:
        self.tasks.start(instance_id, self._once(instance_id), "flow", project_id=project_id)

    async def _once(self, instance_id: str) -> None:
        assert self._plans is not None, "LocalFlows.bind was not called"
        record, _ = await instances.get(self._store, instance_id)
        flow = await self._plans.next_flow(record)
        if flow is not None:
            await flow

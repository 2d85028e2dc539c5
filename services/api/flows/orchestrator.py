"""The one object the Servers manager hands work to: a method per flow, and the compute reads.

Each flow runs under ``retrying``: an outage (etcd, the scheduler or a compute unreachable)
pauses it, and it resumes from the record while the record still needs it, until the deadline.
Once a flow is over its action is concluded from the record (services/api/flows/action_log.py)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from services.api.flows import action_log, delete, power, resize, resize_claims, snapshot
from services.api.flows.actions import ACTIONS
from services.api.flows.base import Deps, Limits, Mutation, in_task, retrying, set_fault, task_failed
from services.api.flows.build import BuildFlow
from services.api.flows.record_events import RecordEvents
from services.api.flows.request_spec import SpecResolver
from services.api.images.manager import ImagesManager
from services.api.peers import Peers, call
from services.core.errors import StratusError, code_of
from services.core.etcd import Store
from stratus.compute.v1 import compute_pb2
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

T = servers_pb2.TaskState
BUILDING = (T.TASK_STATE_SCHEDULING, T.TASK_STATE_SPAWNING)
Pending = Callable[[state_pb2.InstanceRecord], bool]


def build_gave_up(why: StratusError) -> Mutation:
    """ERROR with a fault saying the build waited out its deadline (while it is still building)."""

    def fail(record: state_pb2.InstanceRecord) -> bool | None:
        if record.server.task_state not in BUILDING:
            return False
        set_fault(record, StratusError(f"build {why.message}", reason=why.reason, metadata=why.metadata),
                  code_of(why).name)  # fmt: skip
        return None

    return fail


def settling_or(*tasks: int) -> Pending:
    return lambda record: record.server.task_state in tasks or resize_claims.needs_settling(record)


class Orchestrator:
    def __init__(
        self, store: Store, peers: Peers, specs: SpecResolver, images: ImagesManager, limits: Limits | None = None,
        events: RecordEvents | None = None,
    ) -> None:  # fmt: skip
        self._deps = Deps(store, peers, specs, images, limits or Limits(), events)
        self._build = BuildFlow(self._deps)

    @property
    def limits(self) -> Limits:
        return self._deps.limits

    async def _run(
        self,
        instance_id: str,
        what: str,
        attempt: Callable[[], Awaitable[None]],
        pending: Pending,
        give_up: Callable[[StratusError], Mutation] | None = None,
    ) -> None:
        await retrying(self._deps, instance_id, what, attempt, pending, give_up)

    async def build(self, instance_id: str) -> None:
        await self._run(instance_id, "build", lambda: self._build.run(instance_id), in_task(*BUILDING), build_gave_up)
        await self._conclude(instance_id, action_log.CREATE)

    async def delete(self, instance_id: str) -> None:
        await self._run(instance_id, "delete", lambda: delete.delete(self._deps, instance_id),
                        in_task(T.TASK_STATE_DELETING))  # fmt: skip
        await self._conclude(instance_id, action_log.DELETE)

    async def power(self, instance_id: str, action: str) -> None:
        task = ACTIONS[action].task
        await self._run(instance_id, action, lambda: power.power(self._deps, instance_id, action), in_task(task),
                        lambda why: task_failed(task, action, why))  # fmt: skip
        await self._conclude(instance_id, action)

    async def resize(self, instance_id: str) -> None:
        await self._run(instance_id, "resize", lambda: resize.resize(self._deps, instance_id),
                        in_task(T.TASK_STATE_RESIZE_PREP))  # fmt: skip
        await self._conclude(instance_id, "resize")

    async def confirm_resize(self, instance_id: str) -> None:
        await self._run(instance_id, "confirm-resize", lambda: resize.confirm(self._deps, instance_id),
                        settling_or(T.TASK_STATE_RESIZE_CONFIRMING))  # fmt: skip
        await self._conclude(instance_id, "confirm-resize")

    async def revert_resize(self, instance_id: str) -> None:
        await self._run(instance_id, "revert-resize", lambda: resize.revert(self._deps, instance_id),
                        settling_or(T.TASK_STATE_RESIZE_REVERTING))  # fmt: skip
        await self._conclude(instance_id, "revert-resize")

    async def settle_resize(self, instance_id: str) -> None:
        settle = functools.partial(resize.settle_resize, self._deps, instance_id)
        await self._run(instance_id, "settle-resize", settle, settling_or())

    async def resume_snapshot(self, instance_id: str) -> None:
        """Copies the server's disk into its SAVING snapshot image (or clears the task when none is left)."""
        await self._run(instance_id, "snapshot", lambda: snapshot.resume(self._deps, instance_id),
                        in_task(T.TASK_STATE_IMAGE_SNAPSHOT))  # fmt: skip
        await self._conclude(instance_id, "snapshot")

    async def _conclude(self, instance_id: str, name: str) -> None:
        await action_log.conclude(self._deps.store, instance_id, name)

    async def console_output(self, host: str, instance_id: str, lines: int) -> str:
        request = compute_pb2.GetConsoleOutputRequest(instance_id=instance_id, lines=lines)
        reply: compute_pb2.GetConsoleOutputResponse = await call(self._deps.compute(host).GetConsoleOutput, request)
        return reply.output

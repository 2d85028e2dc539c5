"""Background work that continues after a reply (building, deleting, power actions), one task
per instance at a time, tracked so shutdown can wait for it and delete can wait for a build.

The work runs as the system (admin) in the instance's project, whoever asked for it: a flow acts
for the stack, and one resumed at start-up has no caller at all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from services.core import context
from services.core.context import RequestContext

log = logging.getLogger(__name__)


class InstanceTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, instance_id: str, work: Coroutine[Any, Any, None], name: str, *, project_id: str) -> None:
        """Runs ``work`` after whatever task this instance already has (they never overlap), as the
        system in ``project_id`` (the instance's)."""
        previous = self._tasks.get(instance_id)
        system = context.system(project_id)
        task = asyncio.create_task(self._after(previous, work, name, system), name=f"{name}:{instance_id}")
        self._tasks[instance_id] = task
        task.add_done_callback(lambda t: self._forget(instance_id, t))

    async def _after(
        self, previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None], name: str, ctx: RequestContext
    ) -> None:
        context.bind(ctx)  # the task's own copy of the context: the caller's binding is not touched
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(previous)
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", name)

    def _forget(self, instance_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(instance_id) is task:
            del self._tasks[instance_id]

    def cancel(self, instance_id: str) -> None:
        """Stops the instance's work at its next await (its owner changed)."""
        task = self._tasks.get(instance_id)
        if task is not None:
            task.cancel()

    async def drain(self, timeout_s: float) -> None:
        """Waits for the work in flight; what is left another replica takes over (owners.py)."""
        pending = list(self._tasks.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

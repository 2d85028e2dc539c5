"""The long calls a compute accepted and runs on after answering (a spawn, a snapshot), one per
instance: asking again while one runs finds it, a delete cancels it, stopping cancels them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._actions: dict[str, str] = {}  # instance -> the action its running job serves

    def running(self, instance_id: str) -> bool:
        return instance_id in self._tasks

    def serves(self, instance_id: str, action_id: str) -> bool:
        """A job runs for the instance, for ``action_id``."""
        return instance_id in self._tasks and self._actions.get(instance_id) == action_id

    def start(self, instance_id: str, name: str, job: Coroutine[Any, Any, None], action_id: str = "") -> None:
        """Runs ``job`` for the instance (there must be none running for it), serving ``action_id``."""
        if instance_id in self._tasks:
            job.close()
            raise RuntimeError(f"a job is running already for {instance_id}")
        task = asyncio.create_task(job, name=f"{name}:{instance_id}")
        self._tasks[instance_id] = task
        self._actions[instance_id] = action_id
        task.add_done_callback(lambda done: self._done(instance_id, done))

    def _done(self, instance_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(instance_id) is task:
            del self._tasks[instance_id]
            self._actions.pop(instance_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s failed", task.get_name(), exc_info=task.exception())

    async def wait(self, instance_id: str) -> None:
        """Until the instance's job (if any) is over."""
        task = self._tasks.get(instance_id)
        if task is not None:
            await asyncio.wait([task])

    async def cancel(self, instance_id: str) -> None:
        """Cancels the instance's job and waits until it has cleaned up."""
        task = self._tasks.get(instance_id)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(tasks)

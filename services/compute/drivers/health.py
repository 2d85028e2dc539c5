"""Whether the hypervisor answers: ``HypervisorHealth`` holds why it does not ("" while it does)
and tells its listeners each time that changes. Event-loop only (no locking)."""

from __future__ import annotations

from collections.abc import Callable

# Called with the new reason ("": answering again).
HealthListener = Callable[[str], None]


class HypervisorHealth:
    def __init__(self) -> None:
        self._reason = ""
        self._listeners: list[HealthListener] = []

    @property
    def reason(self) -> str:
        """Why the hypervisor is degraded; "" while it answers."""
        return self._reason

    def listen(self, listener: HealthListener) -> None:
        """Calls ``listener(reason)`` after every change of the reason."""
        self._listeners.append(listener)

    def degrade(self, reason: str) -> None:
        """The hypervisor does not answer, for ``reason`` (not empty)."""
        if not reason:
            raise ValueError("a degraded hypervisor needs a reason")
        self._set(reason)

    def recover(self) -> None:
        """The hypervisor answers again."""
        self._set("")

    def _set(self, reason: str) -> None:
        if reason == self._reason:
            return
        self._reason = reason
        for listener in list(self._listeners):
            listener(reason)

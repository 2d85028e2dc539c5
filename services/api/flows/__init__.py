"""The multi-step flows behind the Servers API, one module per kind. Each records its progress in
the instance's task_state (and, for a resize, ``record.resize`` and the host's claim) so that a
restarted api finishes it (``ServersManager.recover``):

- build.py: schedule, spawn, retry on another host, or ERROR saying why.
- delete.py: destroy on the host, release the claim, remove the record.
- power.py: stop, start, reboot, pause, unpause, suspend, resume.
- resize.py: resize on the same host, confirm, revert.
- snapshot.py: copy the disk into a new image.

``Orchestrator`` is what the managers call.
"""

from services.api.flows.base import Limits
from services.api.flows.orchestrator import Orchestrator

__all__ = ["Limits", "Orchestrator"]

"""Everything that runs the multi-step work behind the Servers API. Each flow records its progress
in the instance's task_state (and, for a resize, ``record.resize`` and the host's claim) so that a
restarted api, or another replica, finishes it.

The flows, one module per kind:

- build.py: schedule, spawn, retry on another host, or ERROR saying why.
- delete.py: destroy on the host, release the claim, remove the record.
- power.py: stop, start, reboot, pause, unpause, suspend, resume.
- resize.py: resize on the same host, confirm, revert, settle the claim.
- snapshot.py: copy the disk into a new image.

What runs them: orchestrator.py (what the managers call), base.py (dependencies, limits, outages
only delay), compute_step.py and compute_wait.py (a compute call as a step), owners.py (which
replica drives each server's flow, under a lease), tasks.py (one task per instance), deadlines in
each action; their records: action_log.py (the server actions) and actions.py (which states each
action starts from), record_events.py (the watch that wakes waiters), resize_claims.py (the record
and the claim through a resize), snapshot_start.py (the new image and the task, together), and
request_spec.py (what the scheduler is asked at each attempt).
"""

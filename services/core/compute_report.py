"""The ``report`` a compute writes into an instance record when a long call it accepted ends
(state.proto's ComputeReport): which calls write one, and how to tell it is the one awaited."""

from __future__ import annotations

from services.core import instances
from services.core.errors import StratusError, code_of
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

BUILD = "build"
SNAPSHOT = "snapshot"
RESIZE = "resize"
POWER = "power"  # stop, start, reboot, pause, unpause, suspend, resume: a success is the new state


def reported(record: state_pb2.InstanceRecord, host: str, call: str, image_id: str = "") -> bool:
    """True when the record holds ``host``'s outcome of ``call`` (for ``image_id``)."""
    report = record.report
    return (report.host, report.call, report.image_id) == (host, call, image_id)


def fault_of(err: StratusError) -> servers_pb2.Fault:
    return servers_pb2.Fault(code=code_of(err).name, message=err.message, reason=err.reason,
                             created_at=instances.now(), metadata=err.metadata)  # fmt: skip

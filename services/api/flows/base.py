"""What every flow shares: its dependencies, its limits, and how a failure lands in the record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.api.images import ImagesManager
from services.api.peers import CALL_TIMEOUT_S, Peers, call
from services.api.specs import SpecResolver
from services.core import instances
from services.core.errors import StratusError, code_of
from services.core.etcd import Store
from stratus.compute.v1 import compute_pb2_grpc
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

log = logging.getLogger(__name__)
V = servers_pb2.VmState
T = servers_pb2.TaskState
Mutation = Callable[[state_pb2.InstanceRecord], bool | None]


@dataclass(frozen=True, slots=True)
class Limits:
    max_build_attempts: int = 3
    # Deadlines of the compute calls that copy whole disks (a first build downloads the image).
    build_timeout_s: float = 1800.0
    snapshot_timeout_s: float = 1800.0


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    peers: Peers
    specs: SpecResolver
    images: ImagesManager
    limits: Limits

    def compute(self, host: str) -> compute_pb2_grpc.ComputeStub:
        return self.peers.compute(host)


async def call_compute(
    deps: Deps, server: servers_pb2.Server, method: str, request: Callable[..., Any], timeout_s: float = CALL_TIMEOUT_S
) -> StratusError | None:
    """Calls ``method`` of the server's compute for the server; the error it failed with, if it
    did (the compute records a success itself)."""
    try:
        await call(getattr(deps.compute(server.host), method), request(instance_id=server.id), timeout_s)
    except StratusError as err:
        log.warning("%s of server %s failed: %s", method, server.id, err.message)
        return err
    return None


def set_fault(record: state_pb2.InstanceRecord, err: StratusError, code: str) -> None:
    """ERROR with a fault carrying the error's reason and metadata (e.g. the filter and resource)."""
    server = record.server
    server.vm_state = V.VM_STATE_ERROR
    server.task_state = T.TASK_STATE_UNSPECIFIED
    server.fault.CopyFrom(servers_pb2.Fault(code=code, message=err.message, reason=err.reason,
                                            created_at=instances.now(), metadata=err.metadata))  # fmt: skip


def task_failed(task: int, what: str, cause: StratusError) -> Mutation:
    """Clears ``task`` and says in the fault that ``what`` failed, and why; the vm state stays (the
    compute did not change it). Nothing changes if the task is no longer ``task`` (deleting, or the
    compute finished and only its reply was lost)."""
    fault = servers_pb2.Fault(code=code_of(cause).name, message=f"{what} failed: {cause.message}",
                              reason=cause.reason, metadata=cause.metadata)  # fmt: skip

    def fail(record: state_pb2.InstanceRecord) -> bool | None:
        if record.server.task_state != task:
            return False
        record.server.task_state = T.TASK_STATE_UNSPECIFIED
        record.server.fault.CopyFrom(fault)
        record.server.fault.created_at.CopyFrom(instances.now())
        return None

    return fail


def clear_task(task: int) -> Mutation:
    """Clears ``task`` if it is still the one in progress."""

    def clear(record: state_pb2.InstanceRecord) -> bool | None:
        if record.server.task_state != task:
            return False
        record.server.task_state = T.TASK_STATE_UNSPECIFIED
        return None

    return clear

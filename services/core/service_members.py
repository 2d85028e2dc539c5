"""Pure membership rules: a member's public view from its records, and applying an operator update.

A service is UP while its lease key ``services/<binary>/<host>`` exists and it is not forced down;
DOWN otherwise. Its status is the operator's choice (ENABLED unless disabled). A compute whose
hypervisor does not answer says why in ``degraded_reason`` (from its capabilities record).
"""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from stratus.state.v1 import state_pb2
from stratus.v1 import services_pb2

UP = services_pb2.SERVICE_STATE_UP
DOWN = services_pb2.SERVICE_STATE_DOWN
ENABLED = services_pb2.SERVICE_STATUS_ENABLED
DISABLED = services_pb2.SERVICE_STATUS_DISABLED
UNSPECIFIED = services_pb2.SERVICE_STATUS_UNSPECIFIED


def compose(
    binary: str,
    host: str,
    *,
    record: state_pb2.ServiceRecord | None,
    admin: state_pb2.ServiceAdmin | None,
    seen: state_pb2.ServiceSeen | None,
    now: timestamp_pb2.Timestamp,
    degraded_reason: str = "",
) -> services_pb2.Service:
    """The member as clients see it; ``record`` is the lease key's value, None when it is gone.
    ``degraded_reason``: the host's hypervisor does not answer (a compute's capabilities say why)."""
    admin = admin if admin is not None else state_pb2.ServiceAdmin()
    member = services_pb2.Service(
        binary=binary,
        host=host,
        state=UP if record is not None and not admin.forced_down else DOWN,
        status=admin.status or ENABLED,
        forced_down=admin.forced_down,
        disabled_reason=admin.disabled_reason,
        degraded_reason=degraded_reason,
    )
    if record is not None:
        member.last_seen.CopyFrom(now)
        member.endpoint = record.endpoint
        member.version = record.version
        member.started_at.CopyFrom(record.started_at)
    elif seen is not None:
        member.last_seen.CopyFrom(seen.last_seen)
        member.endpoint = seen.endpoint
    return member


def apply_update(
    current: state_pb2.ServiceAdmin | None,
    status: services_pb2.ServiceStatus.ValueType,
    disabled_reason: str | None,
    forced_down: bool | None,
    now: timestamp_pb2.Timestamp,
) -> state_pb2.ServiceAdmin:
    """The admin record after an update. UNSPECIFIED status and unset fields keep their value;
    disabling clears nothing; enabling clears the disabled reason unless one is given."""
    admin = state_pb2.ServiceAdmin()
    if current is not None:
        admin.CopyFrom(current)
    admin.status = admin.status or ENABLED
    if status == ENABLED:
        admin.status = ENABLED
        admin.disabled_reason = disabled_reason or ""
    else:
        if status == DISABLED:
            admin.status = DISABLED
        if disabled_reason is not None:
            admin.disabled_reason = disabled_reason
    if forced_down is not None:
        admin.forced_down = forced_down
    admin.updated_at.CopyFrom(now)
    return admin

"""Domain errors and the one table that maps them to gRPC status codes with google.rpc details.

Handlers raise these; the request interceptor turns them into a status with ``ErrorInfo``
(machine-readable reason), ``BadRequest`` (the fields that are wrong) and ``ResourceInfo``
(what was not found), and for UNAVAILABLE a ``RetryInfo`` saying when to try again. A client that
receives such a status can turn it back with ``from_rpc_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "stratus.dev"
ECHO_MAX = 64  # how much of a value a client sent an error message repeats
MESSAGE_MAX = 2048
VIOLATIONS_MAX = 20
RETRY_AFTER_S = 1.0  # the retry hint an outage of the state store answers with
STATE_STORE_DOWN = "the state store is unreachable; retry"
STATE_STORE_UNAVAILABLE = "STATE_STORE_UNAVAILABLE"  # its ErrorInfo reason
# While etcd's NOSPACE alarm is raised (its database reached its quota) it refuses writes: UNAVAILABLE
# with this message and reason, and a longer retry hint (an operator has to act).
STATE_STORE_FULL = "STATE_STORE_FULL"
STATE_STORE_FULL_MESSAGE = (
    "the state store is out of space: etcd refuses writes (alarm NOSPACE, database space exceeded) "
    "until an operator frees space and disarms the alarm; retry later"
)
FULL_RETRY_AFTER_S = 5.0
STORE_REASONS = (STATE_STORE_UNAVAILABLE, STATE_STORE_FULL)  # the reasons that mean "etcd, not the call"


def shorten(value: str, limit: int = ECHO_MAX) -> str:
    """``value`` as an error message may echo it: at most ``limit`` characters, '…' when cut."""
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


class StratusError(Exception):
    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        message = shorten(message, MESSAGE_MAX)
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = metadata or {}


class InvalidArgument(StratusError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[tuple[str, str]], *, message: str = "", reason: str | None = None):
        """``message``: said instead of the violations where no field can be named (a request that
        does not decode)."""
        self.violations = [(shorten(f, 2 * ECHO_MAX), shorten(why, 4 * ECHO_MAX)) for f, why in violations]
        if len(self.violations) > VIOLATIONS_MAX:
            more = len(self.violations) - VIOLATIONS_MAX
            self.violations = [*self.violations[:VIOLATIONS_MAX], ("...", f"and {more} more")]
        super().__init__(message or "; ".join(f"{field}: {why}" for field, why in self.violations), reason=reason)


class NotFound(StratusError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, name: str, *, field: str = ""):
        """``field``: the request field that named it (``server.flavor_id``), sent as a BadRequest."""
        self.resource_type = resource_type
        self.name = shorten(name)
        self.field = field
        super().__init__(f"{resource_type} {self.name!r} not found")


class AlreadyExists(StratusError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(StratusError):
    reason = "INVALID_STATE"


class Aborted(StratusError):
    reason = "CONFLICT"


class PermissionDenied(StratusError):
    reason = "FORBIDDEN"


class Unauthenticated(StratusError):
    reason = "UNAUTHENTICATED"


class ResourceExhausted(StratusError):
    reason = "NO_VALID_HOST"


class QuotaExceeded(ResourceExhausted):
    """A project would go above one of its quotas: RESOURCE_EXHAUSTED with a google.rpc
    ``QuotaFailure`` whose violations name each resource (``quota_metric``) and say the limit, the
    usage and what was requested."""

    reason = "QUOTA_EXCEEDED"

    def __init__(self, project_id: str, over: Sequence[tuple[str, int, int, int]] = ()):
        """``over``: (resource, limit, usage, requested) for each resource the request goes over."""
        self.project_id = project_id
        self.over = list(over)[:VIOLATIONS_MAX]
        names = ",".join(resource for resource, *_ in self.over)
        super().__init__(
            f"quota exceeded for project {shorten(project_id)!r}: "
            + "; ".join(self.describe(*item) for item in self.over),
            metadata={"project_id": project_id, "resources": names},
        )

    @staticmethod
    def describe(resource: str, limit: int, usage: int, requested: int) -> str:
        return f"{resource}: limit {limit}, in use {usage}, requested {requested}"


class Unavailable(StratusError):
    """Try again later: UNAVAILABLE, with a google.rpc ``RetryInfo`` when ``retry_after_s`` is set."""

    reason = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_s = retry_after_s


def state_store_down(retry_after_s: float = RETRY_AFTER_S) -> Unavailable:
    """What a call answers while etcd cannot be reached (stopped, partitioned or frozen)."""
    return Unavailable(STATE_STORE_DOWN, reason=STATE_STORE_UNAVAILABLE, retry_after_s=retry_after_s)


def state_store_full(retry_after_s: float = FULL_RETRY_AFTER_S) -> Unavailable:
    """What a call that needed a write answers while etcd's NOSPACE alarm is raised."""
    return Unavailable(STATE_STORE_FULL_MESSAGE, reason=STATE_STORE_FULL, retry_after_s=retry_after_s)


class DeadlineExceeded(StratusError):
    """A peer did not answer in time (it may be frozen or overloaded); what it did is unknown."""

    reason = "DEADLINE_EXCEEDED"


class OutOfRange(StratusError):
    """A position past what can be served, such as an etcd revision whose history is compacted."""

    reason = "OUT_OF_RANGE"


class Unimplemented(StratusError):
    reason = "NOT_IMPLEMENTED"


class Internal(StratusError):
    reason = "INTERNAL"


CODES: dict[type[StratusError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    Internal: grpc.StatusCode.INTERNAL,
}
BY_CODE: dict[grpc.StatusCode, type[StratusError]] = {
    code: cls for cls, code in CODES.items() if cls is not QuotaExceeded
}


# Errors that say "not now" rather than "no": a flow waits and tries again until its deadline.
TRANSIENT: tuple[type[StratusError], ...] = (Unavailable, DeadlineExceeded, Aborted)


def is_transient(err: BaseException) -> bool:
    return isinstance(err, TRANSIENT)


def code_of(err: StratusError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in CODES:
            return CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.UNKNOWN


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def quota_failure(err: QuotaExceeded) -> error_details_pb2.QuotaFailure:
    failure = error_details_pb2.QuotaFailure()
    for resource, limit, usage, requested in err.over:
        failure.violations.add(subject=f"project:{err.project_id}", quota_metric=resource,
                               description=err.describe(resource, limit, usage, requested),
                               quota_id=f"{resource}-per-project", quota_value=limit)  # fmt: skip
    return failure


def to_status(err: StratusError) -> grpc.Status:
    code = code_of(err)
    details = [_pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata))]
    if isinstance(err, InvalidArgument) and getattr(err, "violations", None):
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=field, description=why) for field, why in err.violations
        ]
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    if isinstance(err, NotFound) and hasattr(err, "resource_type"):
        details.append(_pack(error_details_pb2.ResourceInfo(resource_type=err.resource_type, resource_name=err.name)))
        if err.field:
            why = f"no such {err.resource_type}"
            violation = error_details_pb2.BadRequest.FieldViolation(field=err.field, description=why)
            details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    if isinstance(err, QuotaExceeded) and hasattr(err, "over"):
        details.append(_pack(quota_failure(err)))
    retry_after_s = getattr(err, "retry_after_s", None)
    if isinstance(err, Unavailable) and retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=err.message, details=details)
    return rpc_status.to_status(status)


def from_rpc_error(exc: grpc.aio.AioRpcError) -> StratusError:
    """The domain error a peer Stratus service raised, with its reason and metadata."""
    cls = BY_CODE.get(exc.code(), Internal)
    reason, metadata = cls.reason, {}
    retry_after_s: float | None = None
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Unpack(retry):
                retry_after_s = retry.retry_delay.ToNanoseconds() / 1e9
    err = error_from(exc.code().name, exc.details() or exc.code().name, reason, metadata)
    if isinstance(err, Unavailable):
        err.retry_after_s = retry_after_s
    return err


def error_from(code: str, message: str, reason: str = "", metadata: Mapping[str, str] | None = None) -> StratusError:
    """The domain error a status code's name stands for (``FAILED_PRECONDITION`` from a fault a
    compute recorded, say), with its message, reason and metadata."""
    cls = BY_CODE.get(getattr(grpc.StatusCode, code, grpc.StatusCode.INTERNAL), Internal)
    err = cls.__new__(cls)
    StratusError.__init__(err, message, reason=reason or cls.reason, metadata=dict(metadata or {}))
    if isinstance(err, Unavailable):
        err.retry_after_s = None
    return err

"""Who may call an internal process: the role named by the caller's certificate.

Every internal port requires a client certificate signed by the stack's CA (mutual TLS, see
``tls.py``); each process holds one whose common name is its role (``services/launcher/certs.py``).
The transport proves the certificate; this table says what each role may call, as the Kubernetes
kubelet authorises its callers after authenticating them:

- the api drives the computes, asks the scheduler and reads and sets the servicegroup;
- a compute calls its peers (moves);
- nobody else calls anything here (a CLI or a user goes through the api).

Default deny: a service missing from the table takes no one. A port without TLS (``stratus up
--insecure``) cannot tell who calls and takes every caller; the process says so at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from services.core import context as reqctx
from services.core.errors import PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

COMMON_NAME = "x509_common_name"  # gRPC's auth context: the verified peer certificate's CN

# Full service name -> the roles that may call any of its methods.
ALLOWED_CALLERS: Mapping[str, frozenset[str]] = {
    "stratus.compute.v1.Compute": frozenset({"api", "compute"}),
    "stratus.scheduler.v1.Scheduler": frozenset({"api"}),
    "stratus.servicegroup.v1.ServiceGroup": frozenset({"api"}),
}

AuthContext = Mapping[str, Sequence[bytes]]


def service_of(method: str) -> str:
    """``/pkg.Service/Method`` -> ``pkg.Service``."""
    return method.lstrip("/").split("/", 1)[0]


def role_of(auth_context: AuthContext) -> str | None:
    """The role the caller's verified certificate names; None without one (plaintext)."""
    names = auth_context.get(COMMON_NAME) or ()
    return names[0].decode(errors="replace") if names else None


class CallerRoles:
    """The check an internal process makes on every call (``interceptors.RequestInterceptor``)."""

    def __init__(self, enforce: bool, allowed: Mapping[str, frozenset[str]] = ALLOWED_CALLERS) -> None:
        self.enforce = enforce
        self.allowed = allowed
        if not enforce:
            log.warning("this port has no mutual TLS: it cannot tell who calls and takes every caller")

    def check(self, method: str, auth_context: AuthContext) -> reqctx.RequestContext:
        """The context the call runs in (the stack's own); refuses a caller whose role may not call ``method``."""
        if not self.enforce:
            return reqctx.SYSTEM
        role = role_of(auth_context)
        if role is None:
            raise Unauthenticated("this port needs a client certificate from the stack's CA")
        if role not in self.allowed.get(service_of(method), frozenset()):
            raise PermissionDenied(f"the {role} role may not call {method}")
        return reqctx.SYSTEM

"""Which stack a user command talks to.

Each of the api address, the token and the CA to trust comes from its flag (``--api``,
``--token``, ``--ca-cert``), else the environment (``STRATUS_API``, ``STRATUS_TOKEN``,
``STRATUS_CA_CERT``), else ``stack.json`` in the state dir (``--state-dir``, else
``STRATUS_STATE_DIR``, else ``~/.local/state/stratus``). With a CA the api is spoken to over TLS.
A stack with several api replicas lists them all; the CLI talks to the first one that accepts a
connection (``reachable``), so a command still works while api-1 is down or restarting.

A stack's token and CA go only to that stack: its token is sent only to one of its own ``api``/``apis``
addresses and only over its own CA (none for a plaintext stack); its CA is used only for those
addresses. An api elsewhere, or another CA, needs ``--token``/``STRATUS_TOKEN`` (``ForeignApi``
otherwise, before anything is sent).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from services.core.config import DEFAULT_STATE_DIR
from services.launcher.stackfile import BadStackFile, read_stack, stack_path

HOW_TO_START = "start a stack with `stratus up`, or point --api/STRATUS_API at a running api"


class NoStack(RuntimeError):
    pass


class ForeignApi(RuntimeError):
    """The stack's token would go to an api (or over a CA) not the stack's: a usage error."""


@dataclass(frozen=True)
class Target:
    api: str
    token: str | None
    source: str  # where the api address came from, for messages
    ca_cert: Path | None = None  # TLS trusting this CA; None: plaintext
    alternates: tuple[str, ...] = ()  # the stack's other api replicas, tried in order when ``api`` is down


def state_dir_of(flag: Path | None, env: Mapping[str, str]) -> Path:
    if flag is not None:
        return flag.expanduser()
    from_env = env.get("STRATUS_STATE_DIR")
    return Path(from_env).expanduser() if from_env else DEFAULT_STATE_DIR


def resolve_target(
    api: str | None, token: str | None, state_dir: Path | None, env: Mapping[str, str], ca_cert: Path | None = None
) -> Target:
    api_source = "--api" if api else "STRATUS_API"
    api = api or env.get("STRATUS_API") or None
    token = token or env.get("STRATUS_TOKEN") or None
    ca = ca_cert or (Path(env["STRATUS_CA_CERT"]) if env.get("STRATUS_CA_CERT") else None)
    path = stack_path(state_dir_of(state_dir, env))
    try:
        stack = read_stack(path)
    except (BadStackFile, OSError) as exc:
        if api and token:  # all given: the file could only have lent its CA to its own api
            return Target(api, token, api_source, ca)
        raise NoStack(f"{exc}; {HOW_TO_START}") from exc
    if stack is None:
        if api:
            return Target(api, token, api_source, ca)
        raise NoStack(f"no stack found: no --api or STRATUS_API and no {path}; {HOW_TO_START}")
    if api and api not in stack.apis:  # not this stack's: neither its token nor its CA
        if token is None:
            raise ForeignApi(
                f"{api} (from {api_source}) is not an api of the stack in {path} ({', '.join(stack.apis)}), "
                "so its token is not sent there: pass --token or set STRATUS_TOKEN"
            )
        return Target(api, token, api_source, ca)
    own_ca = Path(stack.ca_cert) if stack.ca_cert else None
    ca = ca or own_ca
    if token is None and not same_file(ca, own_ca):
        raise ForeignApi(
            f"the CA {ca} is not that of the stack in {path} ({own_ca or 'it has none: plaintext'}), "
            "so its token is not sent over it: pass --token or set STRATUS_TOKEN"
        )
    token = token or stack.token or None
    if api:  # one of the stack's apis, named by hand: that one
        return Target(api, token, api_source, ca)
    others = tuple(a for a in stack.apis if a != stack.api)
    return Target(stack.api, token, str(path), ca, others)


def same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.expanduser().resolve() == b.expanduser().resolve()


def accepts(endpoint: str, timeout_s: float) -> bool:
    """True if ``host:port`` accepts a TCP connection within ``timeout_s``."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def reachable(target: Target, timeout_s: float, probe: Callable[[str, float], bool] = accepts) -> Target:
    """The target with the first replica (``api``, then the alternates) that accepts a connection;
    unchanged when there are no alternates (nothing is probed) or none answers."""
    if not target.alternates:
        return target
    for endpoint in (target.api, *target.alternates):
        if probe(endpoint, timeout_s):
            return target if endpoint == target.api else replace(target, api=endpoint)
    return target

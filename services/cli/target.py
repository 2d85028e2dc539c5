"""Which stack a user command talks to.

Each of the api address, the token and the CA to trust comes from its flag (``--api``,
``--token``, ``--ca-cert``), else the environment (``STRATUS_API``, ``STRATUS_TOKEN``,
``STRATUS_CA_CERT``), else ``stack.json`` in the state dir (``--state-dir``, else
``STRATUS_STATE_DIR``, else ``~/.local/state/stratus``). With a CA the api is spoken to over TLS.
A stack with several api replicas lists them all; the CLI talks to the first one that accepts a
connection (``reachable``, all probed at once), so a command still works while api-1 is down or
restarting; when none accepts one within ``timeout_s``, ``Unreachable`` says so at once.

A stack's token and CA go only to that stack: its token is sent only to one of its own ``api``/``apis``
addresses and only over its own CA (none for a plaintext stack); its CA is used only for those
addresses. An api elsewhere, or another CA, needs ``--token``/``STRATUS_TOKEN`` (``ForeignApi``
otherwise, before anything is sent).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from services.launcher.stackfile import BadStackFile, read_stack, stack_path

# services.core.config's (a unit test keeps them equal): importing that module loads pydantic,
# a tenth of a second the CLI's start-up does not spend
DEFAULT_STATE_DIR = Path("~/.local/state/stratus").expanduser()
HOW_TO_START = "start a stack with `stratus up`, or point --api/STRATUS_API at a running api"


class NoStack(RuntimeError):
    pass


class ForeignApi(RuntimeError):
    """The stack's token would go to an api (or over a CA) not the stack's: a usage error."""


class Unreachable(RuntimeError):
    """No endpoint of the target accepts a connection."""

    def __init__(self, target: Target) -> None:
        super().__init__(f"cannot reach the api at {', '.join((target.api, *target.alternates))}")
        self.target = target


@dataclass(frozen=True)
class Target:
    api: str
    token: str | None
    source: str  # where the api address came from, for messages
    ca_cert: Path | None = None  # TLS trusting this CA; None: plaintext
    alternates: tuple[str, ...] = ()  # the stack's other api replicas, tried in order when ``api`` is down
    token_source: str = ""  # where the token came from (--token, STRATUS_TOKEN, stack.json), for messages


def state_dir_of(flag: Path | None, env: Mapping[str, str]) -> Path:
    if flag is not None:
        return flag.expanduser()
    from_env = env.get("STRATUS_STATE_DIR")
    return Path(from_env).expanduser() if from_env else DEFAULT_STATE_DIR


def resolve_target(
    api: str | None, token: str | None, state_dir: Path | None, env: Mapping[str, str], ca_cert: Path | None = None
) -> Target:
    api_source = "--api" if api else "STRATUS_API"
    token_source = "--token" if token else "STRATUS_TOKEN"
    api = api or env.get("STRATUS_API") or None
    token = token or env.get("STRATUS_TOKEN") or None
    ca = ca_cert or (Path(env["STRATUS_CA_CERT"]) if env.get("STRATUS_CA_CERT") else None)
    path = stack_path(state_dir_of(state_dir, env))
    try:
        stack = read_stack(path)
    except (BadStackFile, OSError) as exc:
        if api and token:  # all given: the file could only have lent its CA to its own api
            return Target(api, token, api_source, ca, token_source=token_source)
        raise NoStack(f"{exc}; {HOW_TO_START}") from exc
    if stack is None:
        if api:
            return Target(api, token, api_source, ca, token_source=token_source if token else "")
        raise NoStack(f"no stack found: no --api or STRATUS_API and no {path}; {HOW_TO_START}")
    if api and api not in stack.apis:  # not this stack's: neither its token nor its CA
        if token is None:
            raise ForeignApi(
                f"{api} (from {api_source}) is not an api of the stack in {path} ({', '.join(stack.apis)}), "
                "so its token is not sent there: pass --token or set STRATUS_TOKEN"
            )
        return Target(api, token, api_source, ca, token_source=token_source)
    own_ca = Path(stack.ca_cert) if stack.ca_cert else None
    ca = ca or own_ca
    if token is None and not same_file(ca, own_ca):
        raise ForeignApi(
            f"the CA {ca} is not that of the stack in {path} ({own_ca or 'it has none: plaintext'}), "
            "so its token is not sent over it: pass --token or set STRATUS_TOKEN"
        )
    if token is None and stack.token:
        token, token_source = stack.token, str(path)
    if api:  # one of the stack's apis, named by hand: that one
        return Target(api, token, api_source, ca, token_source=token_source if token else "")
    others = tuple(a for a in stack.apis if a != stack.api)
    return Target(stack.api, token, str(path), ca, others, token_source if token else "")


def same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.expanduser().resolve() == b.expanduser().resolve()


def host_port(endpoint: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` too) as a pair; None for what is not (``unix:``, ``dns:///``)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in host:
        return None
    return host.strip("[]"), int(port)


def accepts(endpoint: str, timeout_s: float) -> bool:
    """True if ``host:port`` accepts a TCP connection within ``timeout_s``."""
    address = host_port(endpoint)
    if address is None:
        return False
    try:
        with socket.create_connection(address, timeout=timeout_s):
            return True
    except OSError:
        return False


def reachable(target: Target, timeout_s: float, probe: Callable[[str, float], bool] = accepts) -> Target:
    """The target with the first endpoint (``api``, then the alternates) that accepts a connection,
    all probed at once, so it takes at most ``timeout_s`` however many there are. Raises
    ``Unreachable`` when none does. An address that is not ``host:port`` is not probed: it is
    taken as it is and gRPC says what is wrong with it."""
    endpoints = (target.api, *target.alternates)
    if host_port(target.api) is None:
        return target
    answers: dict[str, bool] = {}
    threads = [
        threading.Thread(target=lambda e=e: answers.__setitem__(e, probe(e, timeout_s)), daemon=True)
        for e in endpoints
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s + 0.5  # a name that takes long to resolve does not hold us
    for endpoint, thread in zip(endpoints, threads, strict=True):
        thread.join(max(0.0, deadline - time.monotonic()))
        if answers.get(endpoint):
            return target if endpoint == target.api else replace(target, api=endpoint)
    raise Unreachable(target)

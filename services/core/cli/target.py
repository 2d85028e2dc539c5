"""Which stack a user command talks to.

Each of the api address, the token and the CA to trust comes from its flag (``--api``,
``--token``, ``--ca-cert``), else the environment (``STRATUS_API``, ``STRATUS_TOKEN``,
``STRATUS_CA_CERT``), else ``stack.json`` in the state dir (``--state-dir``, else
``STRATUS_STATE_DIR``, else ``~/.local/state/stratus``). With a CA the api is spoken to over TLS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.core.config import DEFAULT_STATE_DIR
from services.core.launcher.stackfile import BadStackFile, read_stack, stack_path

HOW_TO_START = "start a stack with `stratus up`, or point --api/STRATUS_API at a running api"


class NoStack(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    api: str
    token: str | None
    source: str  # where the api address came from, for messages
    ca_cert: Path | None = None  # TLS trusting this CA; None: plaintext


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
    if api and token:
        return Target(api, token, api_source, ca)
    path = stack_path(state_dir_of(state_dir, env))
    try:
        stack = read_stack(path)
    except BadStackFile as exc:
        raise NoStack(f"{exc}; {HOW_TO_START}") from exc
    if stack is None:
        if api:
            return Target(api, None, api_source, ca)
        raise NoStack(f"no stack found: no --api or STRATUS_API and no {path}; {HOW_TO_START}")
    ca = ca or (Path(stack.ca_cert) if stack.ca_cert else None)
    if api:
        return Target(api, token or stack.token or None, api_source, ca)
    return Target(stack.api, token or stack.token or None, str(path), ca)

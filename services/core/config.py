"""Settings for every process: flags over environment (``STRATUS_*``) over a TOML file over defaults.

The TOML file may hold keys for all processes at top level and per-process tables
(``[api]``, ``[compute]``, ...); a table's keys win over top-level ones. Settings are read once at
start-up and passed down; nothing reads configuration at call time.
"""

from __future__ import annotations

import contextvars
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_STATE_DIR = Path("~/.local/state/stratus").expanduser()
S = TypeVar("S", bound="CommonSettings")
_file_values: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("stratus_file_values")


def split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRATUS_", extra="forbid", validate_default=True)
    binary: ClassVar[str] = ""

    etcd: Annotated[list[str], NoDecode] = Field(default=["http://127.0.0.1:2379"], description="etcd URLs")
    prefix: str = "/stratus/"
    host: str = Field(default_factory=socket.gethostname, min_length=1)
    listen: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    state_dir: Path = DEFAULT_STATE_DIR
    lease_ttl_s: int = Field(default=6, ge=2, le=300)
    drain_s: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    _split_etcd = field_validator("etcd", mode="before")(split_list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=_file_values.get({}))


def read_config_file(path: Path | None, binary: str, fields: set[str]) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    values = {k: v for k, v in data.items() if not isinstance(v, dict) and k in fields}
    section = data.get(binary, {})
    if not isinstance(section, dict):
        raise ValueError(f"{path}: [{binary}] must be a table")
    values.update(section)
    return values


def load_settings(cls: type[S], config_file: Path | None = None, **flags: Any) -> S:
    """Builds settings; flags given as None are left to the other sources."""
    file_values = read_config_file(config_file, cls.binary, set(cls.model_fields))
    token = _file_values.set(file_values)
    try:
        return cls(**{k: v for k, v in flags.items() if v is not None})
    finally:
        _file_values.reset(token)

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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:  # imported where used: the CLI reads this module and should start fast
    from services.core.etcd import EtcdTls
    from services.core.tls import ServerTls, TlsFiles

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
    # TLS between processes (services/core/tls.py): the CA that signs every process's certificate, and
    # this process's certificate and key, shown as server and as client. All three or none (plaintext).
    # This process's port then requires a client certificate signed by the CA (mutual TLS)...
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # ...unless it is a public port (the api's): it presents this certificate and asks for none.
    tls_public_cert: Path | None = None
    tls_public_key: Path | None = None
    # etcd client TLS, when the cluster asks for it: the CA its certificate is signed by, and a client
    # certificate and key when it wants one (--client-cert-auth).
    etcd_ca: Path | None = None
    etcd_cert: Path | None = None
    etcd_key: Path | None = None
    etcd_server_name: str | None = None  # checked instead of the address (a name in etcd's certificate)

    _split_etcd = field_validator("etcd", mode="before")(split_list)

    @model_validator(mode="after")
    def _tls_complete(self) -> CommonSettings:
        internal = (self.tls_ca, self.tls_cert, self.tls_key)
        if any(internal) and not all(internal):
            raise ValueError("tls_ca, tls_cert and tls_key go together: give all three or none")
        public = (self.tls_public_cert, self.tls_public_key)
        if any(public) and not (all(public) and all(internal)):
            raise ValueError("tls_public_cert and tls_public_key go together, and with tls_ca, tls_cert, tls_key")
        if (self.etcd_cert is None) != (self.etcd_key is None) or (self.etcd_cert and not self.etcd_ca):
            raise ValueError("etcd_cert and etcd_key go together, and need etcd_ca")
        return self

    def internal_tls(self) -> TlsFiles | None:
        """This process's identity towards its peers; None: plaintext."""
        from services.core.tls import TlsFiles

        if self.tls_ca and self.tls_cert and self.tls_key:
            return TlsFiles(self.tls_ca, self.tls_cert, self.tls_key)
        return None

    def server_tls(self) -> ServerTls | None:
        """How this process's port listens: public (server auth only), mutual TLS, or plaintext (None)."""
        from services.core.tls import ServerTls, TlsFiles

        internal = self.internal_tls()
        if internal is None:
            return None
        if self.tls_public_cert and self.tls_public_key:
            return ServerTls(TlsFiles(internal.ca, self.tls_public_cert, self.tls_public_key), False)
        return ServerTls(internal, True)

    def etcd_tls(self) -> EtcdTls | None:
        from services.core.etcd import EtcdTls

        if self.etcd_ca is None:
            return None
        return EtcdTls(self.etcd_ca, self.etcd_cert, self.etcd_key, self.etcd_server_name)

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

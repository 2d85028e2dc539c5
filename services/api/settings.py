"""The api's settings: port, token and policy files, image limits, build and flow timeouts and
deadlines, seeding, the claims audit, and the per-project quota defaults."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.core.config import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


COUNT_MAX = 10**6  # the largest limit of a count (instances, images, ...); -1 is unlimited
AMOUNT_MAX = 2**53  # of an amount (cores, ram_mb, image_bytes)


class QuotaDefaults(BaseModel):
    """Every project's limits unless an admin set others (UpdateQuotaSet); -1 is unlimited.
    As Nova's. In a config file: ``[api.quota]``; in the environment: ``STRATUS_QUOTA='{"instances": 50}'``."""

    model_config = ConfigDict(extra="forbid")

    instances: int = Field(default=10, ge=-1, le=COUNT_MAX)
    cores: int = Field(default=20, ge=-1, le=AMOUNT_MAX)
    ram_mb: int = Field(default=51200, ge=-1, le=AMOUNT_MAX)
    images: int = Field(default=100, ge=-1, le=COUNT_MAX)
    image_bytes: int = Field(default=1024**4, ge=-1, le=AMOUNT_MAX)
    server_groups: int = Field(default=10, ge=-1, le=COUNT_MAX)
    server_group_members: int = Field(default=10, ge=-1, le=COUNT_MAX)
    keypairs: int = Field(default=100, ge=-1, le=COUNT_MAX)


class ApiSettings(CommonSettings):
    binary: ClassVar[str] = "api"

    port: int = Field(default=8774, ge=0, le=65535)
    # Bearer tokens (see services/core/tokens.py); default <state_dir>/tokens.json.
    tokens_file: Path | None = None
    # The operator's policy rules (services/api/identity/policy.toml's shape), replacing the shipped ones per method.
    policy_file: Path | None = None
    # The shortest lifetime CreateToken gives a token (the longest is 30 days).
    token_ttl_min_s: int = Field(default=60, ge=1, le=3600)
    # Uploaded image bytes; default <state_dir>/images.
    images_dir: Path | None = None
    # The largest image an upload (or a snapshot) may make.
    max_image_bytes: int = Field(default=64 * 1024**3, ge=1)
    # How often the bytes of uploads whose api died (and whose record went with its lease) are removed.
    image_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Hosts a build may try before the server goes to ERROR.
    max_build_attempts: int = Field(default=3, ge=1, le=20)
    # How long a build waits for the compute's outcome (BuildInstance answers at once; the spawn
    # may download a big image first) before the attempt counts as failed (COMPUTE_TIMEOUT).
    build_timeout_s: float = Field(default=1800.0, gt=0)
    # The same for a snapshot, which copies a whole disk.
    snapshot_timeout_s: float = Field(default=1800.0, gt=0)
    # How long a host may have no compute process while a build or snapshot waits for it before
    # the attempt counts as failed (COMPUTE_DOWN); a compute back sooner is asked again.
    compute_down_grace_s: float = Field(default=15.0, gt=0, le=600)
    # How long a flow waits out outages (etcd, the scheduler or a compute unreachable) before it
    # fails with a fault that says so: outages only delay.
    flow_deadline_s: float = Field(default=300.0, gt=0)
    # How often each api replica looks for unfinished flows no live replica drives (one whose
    # replica died is taken over within its lease TTL plus this).
    flow_scan_interval_s: float = Field(default=2.0, gt=0, le=60)
    # Seed flavors m1.tiny/small/medium and the image `tiny` when missing.
    seed: bool = True
    # What `tiny` is seeded from: the built Linux guest (deploy/build-guest.sh) when the file
    # exists, else a 1 MiB boot sector that only prints a line.
    seed_image_file: Path | None = REPO_ROOT / "build/guest/tiny.qcow2"
    # How often the claims audit (services/api/admin/claim_audit.py) checks claims against the records.
    claim_audit_interval_s: float = Field(default=60.0, gt=0)
    # Per-project limits (services/api/quotas/quota.py).
    quota: QuotaDefaults = QuotaDefaults()

    def tokens_path(self) -> Path:
        return self.tokens_file or self.state_dir / "tokens.json"

    def images_path(self) -> Path:
        return self.images_dir or self.state_dir / "images"

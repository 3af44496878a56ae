"""Settings of the service, read from FIELDOPS_* environment variables.

Built once by :func:`get_settings` and passed into ``create_app``; nothing reads the
environment at import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TOKEN_PEPPER = "dev-pepper-not-secret"
DEFAULT_DATABASE_URL = "sqlite:///./var/fieldops.db"


class Settings(BaseSettings):
    """Runtime configuration; defaults run locally (SQLite file, media folder under ./var)."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    media_dir: Path = Path("var/media")
    token_pepper: str = DEV_TOKEN_PEPPER
    max_json_body_bytes: int = Field(default=256 * 1024, gt=0)
    idempotency_ttl_hours: int = Field(default=72, gt=0)
    idempotency_lease_s: int = Field(default=60, gt=0)
    calendar_override_path: Path | None = None
    calendar_strict: bool = False
    signing_key_path: Path = Path("var/keys/contract-signing.key")
    audit_key_path: Path = Path("var/keys/audit-chain.key")
    audit_checkpoint_key_path: Path = Path("var/keys/audit-checkpoint.key")
    audit_checkpoint_dir: Path = Path("var/audit-checkpoints")
    audit_checkpoint_interval_s: int = Field(default=300, ge=0)
    log_level: str = "INFO"
    # The address customers open tracking links at (https://connect.example.com); required in
    # production. Unset in development, `fieldops serve` uses the address it listens on.
    public_base_url: str | None = None
    inspections_dir: Path = Path("var/inspections")
    repair_severity_threshold: int = Field(default=2, ge=0)
    # Seconds between the server's maintenance passes (field_api.maintenance); 0 disables the
    # runner; unset: 60, except with env "test" (tests run the jobs one by one).
    maintenance_interval_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.env == "production":
            problems = []
            if self.token_pepper == DEV_TOKEN_PEPPER:
                problems.append("FIELDOPS_TOKEN_PEPPER is the development default")
            if self.database_url == DEFAULT_DATABASE_URL:
                problems.append("FIELDOPS_DATABASE_URL is the development default")
            if not self.public_base_url:
                problems.append("FIELDOPS_PUBLIC_BASE_URL is not set (tracking links need it)")
            if len(self.token_pepper) < 16:
                problems.append("FIELDOPS_TOKEN_PEPPER must be at least 16 characters")
            if problems:
                raise ValueError("production refuses development defaults: " + "; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def maintenance_every_s(self) -> float:
        """The maintenance runner's period (0: no runner)."""
        if self.maintenance_interval_s is not None:
            return self.maintenance_interval_s
        return 0.0 if self.env == "test" else 60.0


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()

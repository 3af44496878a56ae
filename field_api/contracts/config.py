"""Settings of contracts, read from FIELDOPS_CONTRACT_* (the media slice's pattern)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from field_api.config import Settings, get_settings


class ContractSettings(BaseSettings):
    """The contract font, the supplier's name and the one-time-code policy."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_CONTRACT_", extra="ignore")

    font_path: Path | None = Field(
        default=None,
        description="A TrueType CJK font; default: WenQuanYi Zen Hei (fonts-wqy-zenhei).",
    )
    supplier_name: str = Field(default="国网示例市供电公司", min_length=1, max_length=200)
    otp_ttl_s: int = Field(default=300, ge=30, le=3600)
    otp_max_attempts: int = Field(default=5, ge=1, le=20)
    otp_resend_interval_s: int = Field(default=30, ge=0, le=3600)
    # Codes per contract in 24 h: with 5 attempts each this caps guessing at 50 of a million.
    otp_max_per_day: int = Field(default=10, ge=1, le=100)

    @property
    def otp_ttl(self) -> timedelta:
        return timedelta(seconds=self.otp_ttl_s)

    @property
    def otp_resend_interval(self) -> timedelta:
        return timedelta(seconds=self.otp_resend_interval_s)


@lru_cache(maxsize=1)
def _from_environment() -> ContractSettings:
    return ContractSettings()


def contract_settings(settings: Settings) -> ContractSettings:
    """The contract settings of this service (``settings.contracts`` when present)."""
    configured = getattr(settings, "contracts", None)
    if isinstance(configured, ContractSettings):
        return configured
    return _from_environment()


def sms_sender(settings: Settings | None = None) -> str:
    """The one sender name of every text message to customers (signing codes, progress,
    visits): the supplier's name (``FIELDOPS_CONTRACT_SUPPLIER_NAME``) in 【】."""
    return f"【{contract_settings(settings or get_settings()).supplier_name}】"

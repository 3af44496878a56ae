"""Settings of customer progress, read from FIELDOPS_* environment variables on each use.

``FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE`` (default 30): a tracking link stops working this
many days after its order is closed or cancelled. ``FIELDOPS_WEBHOOK_ALLOW_LOOPBACK`` (default:
true in development and test, false in production, where it cannot be turned on): webhook
targets on the loopback interface (127.0.0.0/8, ::1, ``localhost``) are allowed, for local
receivers. Private, link-local, multicast, reserved and metadata addresses are never allowed.

The service's ``Settings`` may carry a ``tracking`` attribute of this type; otherwise it is
read from the environment when asked (never at import).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from field_api.config import Settings


class TrackingSettings(BaseSettings):
    """Lifetime of tracking links and the webhook loopback switch."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_", extra="ignore")

    tracking_link_days_after_close: float = Field(default=30.0, ge=0, le=3650)
    webhook_allow_loopback: bool | None = None


def tracking_settings(settings: Settings | None = None) -> TrackingSettings:
    """The tracking settings of this service (``settings.tracking`` when present)."""
    configured = getattr(settings, "tracking", None)
    if isinstance(configured, TrackingSettings):
        return configured
    return TrackingSettings()


def allow_loopback(settings: Settings) -> bool:
    """Whether webhook targets may be on the loopback interface (never in production)."""
    if settings.is_production:
        return False
    configured = tracking_settings(settings).webhook_allow_loopback
    return True if configured is None else configured

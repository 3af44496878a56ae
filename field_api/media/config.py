"""Thresholds of the media slice, read from FIELDOPS_MEDIA_* environment variables.

Every [S]/[U] figure (distance, clock tolerance, reuse threshold, size limits, check-digit
rule) is configurable here. The service's ``Settings`` may carry a ``media`` attribute of this
type; otherwise one is built from the environment on first use (never at import).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from field_api.config import Settings
from field_api.media import rules
from field_api.media.analysis import DEFAULT_MAX_IMAGE_PIXELS
from field_api.media.rules import MediaKind, SizeLimits

MIB = 1024 * 1024


class MediaSettings(BaseSettings):
    """Limits and plausibility thresholds of crew evidence."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_MEDIA_", extra="ignore")

    max_distance_m: float = Field(default=rules.DEFAULT_MAX_DISTANCE_M, gt=0)
    clock_tolerance_s: int = Field(default=600, ge=0)
    assumed_utc_offset_h: float = Field(default=8.0, ge=-12, le=14)
    reuse_max_hamming: int = Field(
        default=rules.DEFAULT_REUSE_MAX_HAMMING, ge=0, le=rules.max_distance_found()
    )
    photo_max_bytes: int = Field(default=25 * MIB, gt=0)
    signature_max_bytes: int = Field(default=10 * MIB, gt=0)
    video_max_bytes: int = Field(default=rules.DEFAULT_VIDEO_LIMIT_BYTES, gt=0)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, gt=0)
    meter_check_digit_rule: str | None = None
    tus_expiry_hours: int = Field(default=72, gt=0)
    body_idle_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="An upload body that sends nothing for this long is dropped (408) and "
        "its temporary file removed.",
    )
    barcode_kinds: tuple[MediaKind, ...] = (MediaKind.barcode,)
    analyse_in_process: bool = Field(
        default=True,
        description="Analyse photos in the API process after the response; False leaves "
        "them to field_api.media.worker.",
    )

    @property
    def clock_tolerance(self) -> timedelta:
        return timedelta(seconds=self.clock_tolerance_s)

    @property
    def assumed_utc_offset(self) -> timedelta:
        return timedelta(hours=self.assumed_utc_offset_h)

    def size_limits(self) -> SizeLimits:
        """Per-kind photo limits (signatures smaller) and the video limit."""
        photo = dict.fromkeys(MediaKind, self.photo_max_bytes)
        photo[MediaKind.signature] = self.signature_max_bytes
        return SizeLimits(photo_bytes=photo, video_bytes=self.video_max_bytes)


@lru_cache(maxsize=1)
def _from_environment() -> MediaSettings:
    return MediaSettings()


def media_settings(settings: Settings) -> MediaSettings:
    """The media thresholds of this service (``settings.media`` when present)."""
    configured = getattr(settings, "media", None)
    if isinstance(configured, MediaSettings):
        return configured
    return _from_environment()

"""The media slice's view of its settings section (``settings.media``,
:class:`field_api.config.MediaSettings`, read from ``FIELDOPS_MEDIA_*``)."""

from __future__ import annotations

from field_api.config import MediaSettings
from field_api.media.rules import MediaKind, SizeLimits


def size_limits(cfg: MediaSettings) -> SizeLimits:
    """Per-kind photo limits (signatures smaller) and the video limit."""
    photo = dict.fromkeys(MediaKind, cfg.photo_max_bytes)
    photo[MediaKind.signature] = cfg.signature_max_bytes
    return SizeLimits(photo_bytes=photo, video_bytes=cfg.video_max_bytes)

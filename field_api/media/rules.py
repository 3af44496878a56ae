"""Pure plausibility rules for crew evidence.

A failed check yields an :class:`EvidenceFlag` with a reason for planners to review — it never
rejects the upload. Only size limits reject (they protect the server, not the evidence).
Every threshold is a parameter with a configurable default; nothing here touches the database
or the web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from field_api import messages
from field_api.common.geodesy import Position, distance_m

_UINT64 = (1 << 64) - 1

DEFAULT_MAX_DISTANCE_M = 100.0
DEFAULT_CLOCK_TOLERANCE = timedelta(minutes=10)
# docs/domain.md: the service runs in China; cameras without an EXIF offset are taken as UTC+8.
DEFAULT_ASSUMED_UTC_OFFSET = timedelta(hours=8)
DEFAULT_REUSE_MAX_HAMMING = 6
# Multi-index hashing: 4 slices of 16 bits, each probed exactly and at its 16 one-bit
# neighbours. Two hashes within distance 7 differ in at most 1 bit in some slice (pigeonhole:
# 4 slices x 2 bits = 8 > 7), so the probe finds them; a random hash matches a probe with
# probability 68 / 65536, so candidates stay ~1,000 among a million stored hashes where
# 8-bit slices would give ~31,000.
PHASH_BANDS = 4
PHASH_PROBE_RADIUS = 1


class MediaKind(StrEnum):
    """What a piece of evidence shows."""

    site = "site"
    meter_before = "meter_before"
    meter_after = "meter_after"
    meter_box = "meter_box"
    seal = "seal"
    wiring = "wiring"
    signature = "signature"
    barcode = "barcode"
    other = "other"


class FlagCode(StrEnum):
    """Stable machine names of the evidence flags."""

    gps_missing = "gps_missing"
    gps_too_far = "gps_too_far"
    order_location_missing = "order_location_missing"
    time_missing = "time_missing"
    time_before_acceptance = "time_before_acceptance"
    time_after_upload = "time_after_upload"
    reused_photo = "reused_photo"
    image_unreadable = "image_unreadable"
    barcode_unreadable = "barcode_unreadable"
    barcode_mismatch = "barcode_mismatch"
    truncated = "truncated"
    trailing_data = "trailing_data"


@dataclass(frozen=True)
class EvidenceFlag:
    """A reason an item needs a planner's review.

    ``params`` fill the message ``media_flag.<code>`` of :mod:`field_api.messages`; ``reason`` is
    its English text (logs, the stored ``reason``).
    """

    code: FlagCode
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, code: FlagCode, **params: Any) -> EvidenceFlag:
        """The flag with its English reason rendered from the message catalogue."""
        return cls(code, messages.render(f"media_flag.{code.value}", params, "en"), params)


# --------------------------------------------------------------------------------------------
# Size limits (these reject: 413)

MIB = 1024 * 1024
DEFAULT_PHOTO_LIMITS_BYTES: Mapping[MediaKind, int] = {
    **dict.fromkeys(MediaKind, 25 * MIB),
    MediaKind.signature: 10 * MIB,
}
DEFAULT_VIDEO_LIMIT_BYTES = 1024 * MIB


@dataclass(frozen=True)
class SizeLimits:
    """Largest accepted upload per kind of photo, and for any video."""

    photo_bytes: Mapping[MediaKind, int]
    video_bytes: int

    @classmethod
    def defaults(cls) -> SizeLimits:
        """25 MiB per photo (10 MiB for a signature), 1 GiB per video."""
        return cls(
            photo_bytes=dict(DEFAULT_PHOTO_LIMITS_BYTES), video_bytes=DEFAULT_VIDEO_LIMIT_BYTES
        )

    def max_bytes(self, kind: MediaKind, *, is_video: bool | None) -> int:
        """The limit for an upload; ``is_video=None`` (type not yet known) takes the larger."""
        photo = self.photo_bytes.get(kind, max(self.photo_bytes.values(), default=0))
        if is_video is None:
            return max(photo, self.video_bytes)
        return self.video_bytes if is_video else photo


def size_violation(
    size_bytes: int, kind: MediaKind, *, is_video: bool, limits: SizeLimits
) -> str | None:
    """Why an upload of this size is refused, or None when it fits."""
    limit = limits.max_bytes(kind, is_video=is_video)
    if size_bytes > limit:
        what = "video" if is_video else f"{kind.value} photo"
        return f"a {what} may be at most {limit} bytes, this one has {size_bytes}"
    return None


# --------------------------------------------------------------------------------------------
# Location


def check_location(
    photo: Position | None,
    order: Position | None,
    *,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> EvidenceFlag | None:
    """Flag a photo taken farther than ``max_distance_m`` from the order's site, or without GPS."""
    if photo is None:
        return EvidenceFlag.of(FlagCode.gps_missing)
    if order is None:
        return EvidenceFlag.of(FlagCode.order_location_missing)
    dist = distance_m(photo, order)
    if dist > max_distance_m:
        return EvidenceFlag.of(
            FlagCode.gps_too_far, distance_m=round(dist), limit_m=round(max_distance_m)
        )
    return None


# --------------------------------------------------------------------------------------------
# Time


def as_utc(moment: datetime, *, assumed_utc_offset: timedelta) -> datetime:
    """A timezone-aware UTC instant; naive values are taken at ``assumed_utc_offset``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone(assumed_utc_offset))
    return moment.astimezone(UTC)


def check_capture_time(
    captured_at: datetime | None,
    *,
    accepted_at: datetime,
    uploaded_at: datetime,
    tolerance: timedelta = DEFAULT_CLOCK_TOLERANCE,
    assumed_utc_offset: timedelta = DEFAULT_ASSUMED_UTC_OFFSET,
) -> EvidenceFlag | None:
    """Flag a capture time before the application was accepted or after the upload.

    ``tolerance`` absorbs phone clock drift on both sides. A naive capture time (camera wrote
    no offset) is read at ``assumed_utc_offset`` and the reason says so; naive
    ``accepted_at``/``uploaded_at`` are taken as UTC (how the database returns them).
    """
    if captured_at is None:
        return EvidenceFlag.of(FlagCode.time_missing)
    taken = as_utc(captured_at, assumed_utc_offset=assumed_utc_offset)
    accepted = as_utc(accepted_at, assumed_utc_offset=timedelta(0))
    uploaded = as_utc(uploaded_at, assumed_utc_offset=timedelta(0))
    note: Any = (
        ""
        if captured_at.tzinfo is not None
        else messages.Message(
            "media_flag.camera_offset_assumed", {"offset": _fmt(assumed_utc_offset)}
        ).as_dict()
    )
    if taken < accepted - tolerance:
        return EvidenceFlag.of(
            FlagCode.time_before_acceptance,
            taken=messages.china_minute(taken),
            accepted=messages.china_minute(accepted),
            note=note,
        )
    if taken > uploaded + tolerance:
        return EvidenceFlag.of(
            FlagCode.time_after_upload,
            taken=messages.china_minute(taken),
            uploaded=messages.china_minute(uploaded),
            note=note,
        )
    return None


def _fmt(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


# --------------------------------------------------------------------------------------------
# Perceptual hashes


def to_unsigned64(value: int) -> int:
    """The unsigned 64-bit pattern of a signed int64 (as stored in a BIGINT column)."""
    return value & _UINT64


def to_signed64(value: int) -> int:
    """The signed int64 with the same 64-bit pattern as ``value``."""
    value &= _UINT64
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming_distance(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned)."""
    return (to_unsigned64(a) ^ to_unsigned64(b)).bit_count()


def phash_bands(value: int, *, bands: int = PHASH_BANDS) -> list[int]:
    """Split a 64-bit hash into ``bands`` equal unsigned slices, most significant first."""
    if 64 % bands:
        raise ValueError("bands must divide 64")
    width = 64 // bands
    mask = (1 << width) - 1
    unsigned = to_unsigned64(value)
    return [(unsigned >> (64 - width * (i + 1))) & mask for i in range(bands)]


def phash_probe_keys(
    value: int, *, bands: int = PHASH_BANDS, radius: int = PHASH_PROBE_RADIUS
) -> list[tuple[int, int]]:
    """``(band, slice value)`` keys to look up: every slice and its neighbours within
    ``radius`` bits. Any stored hash within :func:`max_distance_found` of ``value`` has at
    least one of its slices among these keys."""
    if radius not in (0, 1):
        raise ValueError("radius 0 or 1 is supported")
    width = 64 // bands
    keys: list[tuple[int, int]] = []
    for band, part in enumerate(phash_bands(value, bands=bands)):
        keys.append((band, part))
        if radius == 1:
            keys.extend((band, part ^ (1 << bit)) for bit in range(width))
    return keys


def max_distance_found(bands: int = PHASH_BANDS, radius: int = PHASH_PROBE_RADIUS) -> int:
    """The largest Hamming distance the band index is guaranteed to find."""
    return bands * (radius + 1) - 1


@dataclass(frozen=True)
class HashCandidate:
    """A stored photo's hash and where it belongs."""

    item_id: str
    work_order_id: str
    phash: int


@dataclass(frozen=True)
class ReuseMatch:
    """The closest photo on another order."""

    item_id: str
    work_order_id: str
    distance: int


def find_reuse(
    phash: int,
    work_order_id: str,
    candidates: Iterable[HashCandidate],
    *,
    max_hamming: int = DEFAULT_REUSE_MAX_HAMMING,
) -> ReuseMatch | None:
    """The closest candidate from another work order within ``max_hamming`` bits, if any."""
    best: ReuseMatch | None = None
    for cand in candidates:
        if cand.work_order_id == work_order_id:
            continue  # several shots of one site on one order are normal
        dist = hamming_distance(phash, cand.phash)
        if dist <= max_hamming and (best is None or dist < best.distance):
            best = ReuseMatch(cand.item_id, cand.work_order_id, dist)
    return best


def reuse_flag(match: ReuseMatch | None, *, order_label: str | None = None) -> EvidenceFlag | None:
    """The flag for a reused photo; ``order_label`` names the other order for planners."""
    if match is None:
        return None
    where = order_label or match.work_order_id
    return EvidenceFlag.of(
        FlagCode.reused_photo,
        distance=match.distance,
        other_photo=match.item_id,
        other_order=where,
    )


# --------------------------------------------------------------------------------------------
# Barcodes


def check_barcode(scanned: str, decoded: Iterable[str]) -> EvidenceFlag | None:
    """Compare the terminal's scanned value with what the server decoded from the photo."""
    values = list(dict.fromkeys(decoded))
    if not values:
        return EvidenceFlag.of(FlagCode.barcode_unreadable)
    if scanned in values:
        return None
    return EvidenceFlag.of(FlagCode.barcode_mismatch, scanned=scanned, decoded=values)


# --------------------------------------------------------------------------------------------
# File integrity


def check_truncated(truncated: bool) -> EvidenceFlag | None:
    """Flag a photo whose image data ends before its pixels do (an end marker put on a cut
    file): the decoder filled the rest in, so part of what it shows was never taken."""
    if not truncated:
        return None
    return EvidenceFlag.of(FlagCode.truncated)


def check_trailing_data(trailing_bytes: int) -> EvidenceFlag | None:
    """Flag bytes after the image's end that belong to no image (a ZIP archive, an HTML page
    or a vendor trailer riding on the photo: a polyglot file). It is served only as the image
    type its content was checked to be."""
    if trailing_bytes <= 0:
        return None
    return EvidenceFlag.of(FlagCode.trailing_data, trailing_bytes=trailing_bytes)

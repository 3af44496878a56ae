"""Evidence items, their flags, perceptual-hash bands, meter bindings and resumable uploads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base
from field_api.media.analysis import MediaType
from field_api.media.rules import FlagCode, MediaKind
from field_api.work_orders.rules import Stage


def _enum(cls: type[Any]) -> Enum:
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class AnalysisState(StrEnum):
    """Where the deferred analysis (pixels, hash, thumbnail, barcode) of an item stands."""

    pending = "pending"
    done = "done"
    failed = "failed"


class MediaItem(Audited, Base):
    """One photo or video a crew uploaded for an order; the bytes live in the media store."""

    __tablename__ = "media_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(36), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    stage: Mapped[Stage] = mapped_column(_enum(Stage))
    kind: Mapped[MediaKind] = mapped_column(_enum(MediaKind))
    media_type: Mapped[MediaType] = mapped_column(_enum(MediaType))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str | None] = mapped_column(String(255))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=clock.now)
    captured_at: Mapped[datetime | None]
    captured_offset_known: Mapped[bool | None]
    gps_lat: Mapped[float | None]
    gps_lon: Mapped[float | None]
    gps_alt_m: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration_s: Mapped[float | None]
    phash: Mapped[int | None] = mapped_column(BigInteger)
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(64))
    scanned_value: Mapped[str | None] = mapped_column(String(200))
    decoded_value: Mapped[str | None] = mapped_column(String(200))
    barcode_match: Mapped[bool | None]
    analysis: Mapped[AnalysisState] = mapped_column(
        _enum(AnalysisState), default=AnalysisState.pending, index=True
    )
    analysis_error: Mapped[str | None] = mapped_column(Text)


class MediaFlag(Audited, Base):
    """A reason a planner should review an item (a flag, never a rejection)."""

    __tablename__ = "media_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media_items.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    code: Mapped[FlagCode] = mapped_column(_enum(FlagCode))
    reason: Mapped[str] = mapped_column(Text)  # English (logs, older clients)
    # What the message media_flag.<code> (field_api.messages) needs, in no language; None on
    # rows from before the catalogue (their message is the English reason).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class MediaHashBand(Base):
    """One 16-bit slice of a photo's 64-bit perceptual hash, indexed for near-duplicate lookup.

    Probing each slice and its one-bit neighbours (``rules.phash_probe_keys``) finds every
    stored hash within Hamming distance 7 through the index instead of a scan of every hash.
    """

    __tablename__ = "media_hash_bands"

    media_id: Mapped[int] = mapped_column(ForeignKey("media_items.id"), primary_key=True)
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int]  # 0..65535: Integer, a SMALLINT is signed
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"))

    __table_args__ = (Index("ix_media_hash_bands_band_value", "band", "value"),)


class MeterBinding(Audited, Base):
    """Which order a meter (by its 22-digit asset code) is installed on: one order per meter."""

    __tablename__ = "media_meter_bindings"

    meter_code: Mapped[str] = mapped_column(String(22), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media_items.id"))
    bound_at: Mapped[datetime] = mapped_column(default=clock.now)


class ResumableUpload(Audited, Base):
    """A tus 1.0 upload in progress; the bytes so far are in ``uploads/<id>.part``."""

    __tablename__ = "media_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[MediaKind] = mapped_column(_enum(MediaKind))
    stage: Mapped[Stage | None] = mapped_column(_enum(Stage))
    length: Mapped[int] = mapped_column(BigInteger)
    expected_sha256: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str | None] = mapped_column(String(255))
    scanned_value: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media_items.id"))

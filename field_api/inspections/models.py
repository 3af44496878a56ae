"""Imported inspection batches, the line ledger, findings, repair orders, ledger tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base
from field_api.inspections.rules import FindingStatus, LedgerTaskStatus, RepairStage


def _enum(cls: type[Any]) -> Enum:
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class InspectionBatch(Audited, Base):
    __tablename__ = "inspection_batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(1000))
    records_sha256: Mapped[str] = mapped_column(String(64))
    produced_at: Mapped[datetime]
    imported_at: Mapped[datetime] = mapped_column(default=clock.now)
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: The model that proposed the batch's boxes, "<card name>@<version>" from batch.json.
    model: Mapped[str | None] = mapped_column(String(200))


class LedgerLine(Audited, Base):
    __tablename__ = "ledger_lines"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)


class LedgerAsset(Audited, Base):
    __tablename__ = "ledger_assets"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    line_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_lines.id"), index=True)
    lat: Mapped[float]
    lon: Mapped[float]
    registered: Mapped[bool] = mapped_column(default=True)
    #: Capture time of the latest photo showing it (photos whose footprint holds it).
    last_seen_at: Mapped[datetime | None]
    #: Import time of the latest batch with a photo showing it.
    last_seen_imported_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class InspectionPhoto(Audited, Base):
    __tablename__ = "inspection_photos"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the bytes
    batch_id: Mapped[str] = mapped_column(ForeignKey("inspection_batches.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000))
    stored_sha256: Mapped[str | None] = mapped_column(String(64))
    thumbnail_sha256: Mapped[str | None] = mapped_column(String(64))
    width_px: Mapped[int]
    height_px: Mapped[int]
    captured_at: Mapped[datetime | None]
    camera_lat: Mapped[float | None]
    camera_lon: Mapped[float | None]
    center_lat: Mapped[float | None]
    center_lon: Mapped[float | None]
    asset_id: Mapped[str | None] = mapped_column(String(100), index=True)
    #: A JPEG cut short (SD card): decoded as far as its bytes go and still searched; flagged,
    #: never refused.
    truncated: Mapped[bool] = mapped_column(default=False, server_default=false())


class Finding(Audited, Base):
    """One AI detection, proposed until an inspector reviews it."""

    __tablename__ = "findings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("inspection_batches.id"), index=True)
    produced_at: Mapped[datetime]
    photo_id: Mapped[str] = mapped_column(ForeignKey("inspection_photos.id"), index=True)
    asset_id: Mapped[str | None] = mapped_column(String(100), index=True)
    line_id: Mapped[str | None] = mapped_column(String(100), index=True)
    class_name: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float]
    severity: Mapped[int] = mapped_column(index=True)
    x1: Mapped[float]
    y1: Mapped[float]
    x2: Mapped[float]
    y2: Mapped[float]
    ground_lat: Mapped[float | None]
    ground_lon: Mapped[float | None]
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    #: The model card that proposed the box (name, version), from the detection record or,
    #: in older records, its batch. Per finding: the same content-derived finding id can be
    #: re-imported from a batch of another model.
    model: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[FindingStatus] = mapped_column(
        _enum(FindingStatus), default=FindingStatus.proposed, index=True
    )
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Raised by every decision on the finding (review, undo, pole picked): a decision names the
    # version it was shown, so a stale page or a mistaken target is refused (409).
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class RepairOrder(Audited, Base):
    __tablename__ = "repair_orders"
    __table_args__ = (UniqueConstraint("finding_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[str] = mapped_column(ForeignKey("findings.id"))
    asset_id: Mapped[str | None] = mapped_column(String(100))
    line_id: Mapped[str | None] = mapped_column(String(100))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    repair_kit_code: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[RepairStage] = mapped_column(_enum(RepairStage), default=RepairStage.assigned)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    on_site_at: Mapped[datetime | None]
    repaired_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    before_photo_sha256: Mapped[str | None] = mapped_column(String(64))
    after_photo_sha256: Mapped[str | None] = mapped_column(String(64))
    dispatched_at: Mapped[datetime | None]
    dispatched_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None]


class LineDispatch(Audited, Base):
    """Which district and repair crew take the repairs of a ledger line (GroupIdentifier).

    Admins maintain it; a repair order on an asset of the line goes to its crew, else to the
    district's default repair crew.
    """

    __tablename__ = "line_dispatch"

    line_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class LedgerTask(Audited, Base):
    """A ledger correction proposed by a batch: unregistered, uninspected, position mismatch.

    At most one open task per asset and kind (a partial unique index): re-imports and newer
    batches refresh it.
    """

    __tablename__ = "ledger_tasks"
    __table_args__ = (
        Index(
            "uq_ledger_tasks_open_asset_kind",
            "asset_id",
            "kind",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("inspection_batches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    asset_id: Mapped[str] = mapped_column(String(100), index=True)
    line_id: Mapped[str | None] = mapped_column(String(100), index=True)
    lat: Mapped[float]
    lon: Mapped[float]
    observed_lat: Mapped[float | None]
    observed_lon: Mapped[float | None]
    offset_m: Mapped[float | None]
    sightings: Mapped[int] = mapped_column(default=0)
    photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[LedgerTaskStatus] = mapped_column(
        _enum(LedgerTaskStatus), default=LedgerTaskStatus.open, index=True
    )
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]

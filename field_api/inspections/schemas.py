"""Request and response bodies of inspections."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from field_api.inspections.rules import FindingStatus, LedgerTaskStatus, RepairStage
from field_api.types import FiniteFloat, PositiveDbInt, Text


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    directory: Text = Field(
        min_length=1,
        max_length=1000,
        description="Batch output folder, relative to the configured inspections folder.",
    )


class ImportResult(BaseModel):
    batch_id: str
    unchanged: bool
    created: dict[str, int]
    updated: dict[str, int]


class FindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    batch_id: str
    photo_id: str
    asset_id: str | None
    line_id: str | None
    class_name: str
    role: str
    confidence: float
    severity: int
    x1: float
    y1: float
    x2: float
    y2: float
    ground_lat: float | None
    ground_lon: float | None
    evidence_sha256: str | None
    model: str | None = Field(description="Name of the model card that proposed the box.")
    model_version: str | None = Field(description="Version of that model card.")
    status: FindingStatus
    reviewed_by: int | None
    reviewed_at: datetime | None
    review_note: str | None
    version: int = Field(
        description="Raised by every decision; send it back with the next one (stale: 409)."
    )


class FindingPage(BaseModel):
    """One page of the review queue and how many findings match in all."""

    items: list[FindingRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: FindingStatus
    version: PositiveDbInt | None = Field(
        default=None, description="The finding's version the inspector was shown."
    )
    finding_id: Text | None = Field(
        default=None,
        max_length=64,
        description="The finding the decision is meant for (another one than the path's: 409).",
    )
    class_name: Text | None = Field(default=None, min_length=1, max_length=64)
    severity: int | None = Field(default=None, ge=0, le=10)
    xyxy: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    note: Text | None = Field(default=None, max_length=2000)


class RepairOrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    finding_id: str
    asset_id: str | None
    line_id: str | None
    district_id: int | None
    crew_id: int | None
    repair_kit_code: str | None
    lat: float | None
    lon: float | None
    evidence_sha256: str | None
    stage: RepairStage
    created_at: datetime
    on_site_at: datetime | None
    repaired_at: datetime | None
    verified_at: datetime | None
    before_photo_sha256: str | None
    after_photo_sha256: str | None
    dispatched_at: datetime | None
    dispatched_by: int | None
    cancelled_at: datetime | None


class RepairOrderPage(BaseModel):
    items: list[RepairOrderRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ReviewResult(BaseModel):
    finding: FindingRead
    repair_order: RepairOrderRead | None


class UndoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: PositiveDbInt | None = Field(
        default=None, description="The finding's version the inspector was shown."
    )
    finding_id: Text | None = Field(
        default=None,
        max_length=64,
        description="The finding the decision is meant for (another one than the path's: 409).",
    )


class FindingAssetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset_id: Text = Field(min_length=1, max_length=100, description="The pole (ledger asset).")
    version: PositiveDbInt | None = Field(
        default=None, description="The finding's version the inspector was shown."
    )
    finding_id: Text | None = Field(
        default=None,
        max_length=64,
        description="The finding the decision is meant for (another one than the path's: 409).",
    )


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crew_id: PositiveDbInt


class LineDispatchWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    district_id: PositiveDbInt
    crew_id: PositiveDbInt | None = Field(
        default=None, description="Repair crew; null: the district's default repair crew."
    )


class LineDispatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line_id: str
    district_id: int
    crew_id: int | None
    updated_at: datetime
    updated_by: int | None


class LineDispatchPage(BaseModel):
    items: list[LineDispatchRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class RepairTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: RepairStage


class LedgerTaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    batch_id: str
    kind: str
    asset_id: str
    line_id: str | None
    lat: float
    lon: float
    observed_lat: float | None
    observed_lon: float | None
    offset_m: float | None
    sightings: int
    photo_ids: list[str]
    detail: str
    status: LedgerTaskStatus
    decided_by: int | None
    decided_at: datetime | None


class LedgerTaskPage(BaseModel):
    """One page of ledger tasks and how many match in all."""

    items: list[LedgerTaskRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class LedgerDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: bool


class LedgerAssetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    line_id: str | None
    lat: float
    lon: float
    registered: bool
    last_seen_at: datetime | None


class LedgerLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    district_id: int | None


class InspectionPhotoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    batch_id: str
    path: str
    thumbnail_sha256: str | None
    width_px: int
    height_px: int
    captured_at: datetime | None
    camera_lat: float | None
    camera_lon: float | None
    center_lat: float | None
    center_lon: float | None
    asset_id: str | None
    truncated: bool = Field(
        description="A JPEG cut short: decoded as far as its bytes go, still searched."
    )

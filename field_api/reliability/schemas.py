"""Request and response bodies of the reliability slice (names and phones always masked)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, model_validator

from field_api.reliability.rules import Area, Cause, Definition, OutageKind, Variant

Code = Field(min_length=1, max_length=64)


class ImportRead(BaseModel):
    """What an import of feeder sections or of the customer register did."""

    kind: str
    created: int
    updated: int
    import_id: int


class CustomerRead(BaseModel):
    """A register entry as people see it: name and phone masked."""

    account_no: str
    name_masked: str
    phone_masked: str
    supply_point: str
    supply_kind: str
    transformer_code: str
    switch_code: str | None
    feeder: str | None
    district: str
    area: Area
    connected_on: date
    removed_on: date | None


class SnapshotCreate(BaseModel):
    """The month to snapshot (any day of it)."""

    month: date


class SnapshotRead(BaseModel):
    month: date
    district: str
    area: Area
    customers: int
    supply_points: int
    taken_at: datetime


class OutageCreate(BaseModel):
    """A new outage: what is out, from when (default: now), and why.

    The affected customers are derived from the register through the feeder, the switch (its
    feeder section), the transformers or the ledger assets named; ``override_customers`` (with
    a reason, a district and an area) replaces them where the register is incomplete."""

    kind: OutageKind
    cause: Cause
    start_at: datetime | None = None
    end_at: datetime | None = None
    ref: str | None = Field(default=None, min_length=1, max_length=64)
    feeder: str | None = Field(default=None, min_length=1, max_length=64)
    switch_code: str | None = Field(default=None, min_length=1, max_length=64)
    transformer_codes: list[str] = Field(default_factory=list, max_length=500)
    asset_ids: list[str] = Field(default_factory=list, max_length=500)
    override_customers: int | None = Field(default=None, ge=1, le=10_000_000)
    override_supply_points: int | None = Field(default=None, ge=1, le=10_000_000)
    override_reason: str | None = Field(default=None, min_length=3, max_length=500)
    override_district: str | None = Field(default=None, min_length=1, max_length=64)
    override_area: Area | None = None
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _override_is_whole(self) -> OutageCreate:
        given = [self.override_customers, self.override_reason, self.override_district,
                 self.override_area]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError(
                "an override gives override_customers, override_reason, override_district and "
                "override_area together"
            )
        return self


class RestorationCreate(BaseModel):
    """Customers of these transformers got supply back at ``at`` (default: now)."""

    transformer_codes: list[str] = Field(min_length=1, max_length=500)
    at: datetime | None = None


class OutageClose(BaseModel):
    """Everyone still out got supply back at ``end_at`` (default: now)."""

    end_at: datetime | None = None


class SegmentRead(BaseModel):
    transformer_code: str | None
    district: str
    area: Area
    customers: int
    supply_points: int
    restored_at: datetime | None
    restored_at_local: str | None


class OutageRead(BaseModel):
    """An outage; times in UTC with their Asia/Shanghai rendering beside them."""

    id: int
    ref: str | None
    kind: OutageKind
    cause: Cause
    start_at: datetime
    start_at_local: str
    end_at: datetime | None
    end_at_local: str | None
    open: bool
    feeder: str | None
    switch_code: str | None
    transformer_codes: list[str]
    asset_ids: list[str]
    customers: int
    supply_points: int
    override_reason: str | None
    approved: bool
    segments: list[SegmentRead]


class OutageImportRead(BaseModel):
    created: int
    outage_ids: list[int]


class MedThresholdSet(BaseModel):
    """A planner's major-event-day threshold (minutes of daily SAIDI) and why."""

    threshold_min: float = Field(gt=0, le=100_000)
    reason: str = Field(min_length=3, max_length=500)


class MedThresholdRead(BaseModel):
    threshold_min: float
    reason: str
    set_at: datetime


class FiguresRead(BaseModel):
    """The indices of one scope and period (SAIDI and CAIDI in hours); ``ytd_saidi_h`` is the
    year-to-date SAIDI through the end of the period (what the annual target is compared with)."""

    period: str
    served: float
    ytd_saidi_h: float
    customer_interruptions: int
    customer_hours: float
    short_interruptions: int
    saidi_h: float
    saifi: float
    caidi_h: float | None
    asai: float
    short_frequency: float


class ProjectionRead(BaseModel):
    saidi_h: float
    method: str
    target_h: float | None
    on_track: bool | None


class ScopeRead(BaseModel):
    """One scope (everything, an area, or a district's area) month by month and year to date."""

    scope: str
    district: str | None
    area: Area | None
    target_h: float | None
    months: list[FiguresRead]
    ytd: FiguresRead
    projection: ProjectionRead


class MedRead(BaseModel):
    """How major event days were found (IEEE 1366 only) and which days they were."""

    method: str
    threshold_min: float | None
    history_days: int
    days: list[date]


class IndicesRead(BaseModel):
    year: int
    definition: Definition
    variant: Variant
    unit: str
    sustained_above_min: float
    as_of: datetime
    med: MedRead | None
    scopes: list[ScopeRead]

"""The customer register, its monthly snapshots, feeder sections and outage records; planned
outages: budgets, requests, live-line jobs and notices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base
from field_api.reliability.rules import Area, Cause, OutageKind


class FeederSection(Base):
    """A transformer downstream of a switch on a feeder (imported as switch → transformer)."""

    __tablename__ = "reliability_feeder_sections"
    __table_args__ = (UniqueConstraint("transformer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    switch_code: Mapped[str] = mapped_column(String(64), index=True)
    feeder: Mapped[str] = mapped_column(String(64), index=True)
    district: Mapped[str] = mapped_column(String(64))
    transformer_id: Mapped[int] = mapped_column(ForeignKey("network_transformers.id"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Customer(Base):
    """One customer account. ``name`` and ``phone`` are kept whole for notices and masked in
    every read model, list, export and log. ``supply_point`` groups accounts: a low-voltage
    supply point, or a medium-voltage user with its public transformer (``supply_kind`` mv)."""

    __tablename__ = "reliability_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_no: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(64))
    supply_point: Mapped[str] = mapped_column(String(64), index=True)
    supply_kind: Mapped[str] = mapped_column(String(8))
    transformer_id: Mapped[int] = mapped_column(
        ForeignKey("network_transformers.id"), index=True
    )
    switch_code: Mapped[str | None] = mapped_column(String(64), default=None)
    feeder: Mapped[str | None] = mapped_column(String(64), default=None)
    district: Mapped[str] = mapped_column(String(64), index=True)
    area: Mapped[Area] = mapped_column(Enum(Area, native_enum=False, length=8))
    connected_on: Mapped[date]
    removed_on: Mapped[date | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class RegisterSnapshot(Base):
    """Customers and supply points served in one month, district and area (the denominator)."""

    __tablename__ = "reliability_register_snapshots"
    __table_args__ = (UniqueConstraint("month", "district", "area"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(index=True)
    district: Mapped[str] = mapped_column(String(64))
    area: Mapped[Area] = mapped_column(Enum(Area, native_enum=False, length=8))
    customers: Mapped[int]
    supply_points: Mapped[int]
    taken_at: Mapped[datetime] = mapped_column(default=clock.now)


class ReliabilityImport(Audited, Base):
    """One import of the register or of feeder sections (the audited record of a bulk load)."""

    __tablename__ = "reliability_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=clock.now)


class MedThresholdSetting(Audited, Base):
    """A planner's major-event-day threshold (minutes of daily SAIDI); the latest one counts."""

    __tablename__ = "reliability_med_thresholds"

    id: Mapped[int] = mapped_column(primary_key=True)
    threshold_min: Mapped[float]
    reason: Mapped[str] = mapped_column(String(500))
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(default=clock.now)


class Outage(Audited, Base):
    """An outage: planned or fault, open until its end is recorded (times in UTC)."""

    __tablename__ = "reliability_outages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    kind: Mapped[OutageKind] = mapped_column(Enum(OutageKind, native_enum=False, length=16))
    cause: Mapped[Cause] = mapped_column(Enum(Cause, native_enum=False, length=32))
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    feeder: Mapped[str | None] = mapped_column(String(64), default=None)
    switch_code: Mapped[str | None] = mapped_column(String(64), default=None)
    transformer_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    asset_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    override_customers: Mapped[int | None] = mapped_column(default=None)
    override_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class OutageSegment(Base):
    """Customers of one transformer (district, area) in an outage, and when they got supply
    back: an outage restored in steps has segments restored at different times."""

    __tablename__ = "reliability_outage_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("reliability_outages.id"), index=True)
    transformer_code: Mapped[str | None] = mapped_column(String(64), default=None)
    district: Mapped[str] = mapped_column(String(64))
    area: Mapped[Area] = mapped_column(Enum(Area, native_enum=False, length=8))
    customers: Mapped[int]
    supply_points: Mapped[int]
    restored_at: Mapped[datetime | None] = mapped_column(default=None)


# --- planned outages (budgets, requests, live-line work, notices) --------------------------------


class OutageBudget(Audited, Base):
    """A district's yearly planned-outage customer-hours (proposed, then set by planners)."""

    __tablename__ = "reliability_outage_budgets"
    __table_args__ = (UniqueConstraint("district", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    year: Mapped[int]
    customer_hours: Mapped[float]
    proposed_customer_hours: Mapped[float]
    method: Mapped[str] = mapped_column(String(100))
    fault_share: Mapped[float]
    reason: Mapped[str] = mapped_column(String(500), default="")
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    set_at: Mapped[datetime] = mapped_column(default=clock.now)


class PlannedOutageRequest(Audited, Base):
    """A dispatcher's request for a planned outage of a feeder section (times in UTC).

    ``state``: requested, approved, merged (its work is done in ``merged_into``'s outage) or
    cancelled. ``customer_hours`` is what it costs now (a host's merged cost; 0 once merged).
    ``window_version`` grows each time the window moves (notices of older ones never go out).
    ``outage_id`` links order 18's outage record once the outage happened."""

    __tablename__ = "reliability_planned_outages"

    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    switch_code: Mapped[str] = mapped_column(String(64), index=True)
    feeder: Mapped[str] = mapped_column(String(64))
    transformer_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    work: Mapped[str] = mapped_column(String(500))
    requester: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime]
    customers: Mapped[int]
    customer_hours: Mapped[float]
    state: Mapped[str] = mapped_column(String(16), index=True)
    window_version: Mapped[int] = mapped_column(default=1)
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("reliability_planned_outages.id"), default=None
    )
    overspend_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    outage_id: Mapped[int | None] = mapped_column(
        ForeignKey("reliability_outages.id"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class LiveLineJob(Audited, Base):
    """Live-line work (带电作业) done instead of an outage: the customer-hours avoided."""

    __tablename__ = "reliability_live_line_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    switch_code: Mapped[str | None] = mapped_column(String(64), default=None)
    transformer_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    work: Mapped[str] = mapped_column(String(500))
    done_on: Mapped[date] = mapped_column(index=True)
    outage_hours: Mapped[float]
    customers: Mapped[int]
    customer_hours_avoided: Mapped[float]
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class OutageNotice(Base):
    """One notice to one customer account about one window of a planned outage.

    Unique per (request, customer, kind, window version): scheduling twice finds the row. The
    ``reliability.outage_notice`` job hands a pending row to the SMS outbox once (its state
    turns ``sent`` in the same transaction) and only while its window is still the request's."""

    __tablename__ = "reliability_outage_notices"
    __table_args__ = (UniqueConstraint("request_id", "customer_id", "kind", "window_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("reliability_planned_outages.id"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("reliability_customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    window_version: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    sms_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("sms_outbox.id"), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

"""Request and response bodies of deadlines, pauses and planned visits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from field_api import messages
from field_api.deadlines import rules
from field_api.deadlines.models import ClockPause, PlannedVisit
from field_api.deadlines.service import AttentionGroup, AttentionItem
from field_api.types import IsoAwareDatetime, Text
from field_api.work_orders.rules import Stage


class ClockRead(BaseModel):
    """One clock; ``provisional`` when counted on weekends alone for ``missing_years``."""

    clock: str
    kind: rules.ClockKind
    governing: bool
    started_on: date
    limit_days: int | None
    due_on: date | None
    provisional: bool
    missing_years: list[int]
    capped_by_end_to_end: bool
    finished_on: date | None
    status: rules.ClockStatus | None
    paused: bool
    paused_working_days: int

    @classmethod
    def of(cls, clock: rules.Clock) -> ClockRead:
        return cls(
            clock=clock.name,
            kind=clock.kind,
            governing=clock.governing,
            started_on=clock.started_on,
            limit_days=clock.limit_days,
            due_on=clock.due.due if clock.due else None,
            provisional=bool(clock.due and clock.due.provisional),
            missing_years=list(clock.due.missing_years) if clock.due else [],
            capped_by_end_to_end=clock.capped_by_end_to_end,
            finished_on=clock.finished_on,
            status=clock.status,
            paused=clock.paused,
            paused_working_days=clock.paused_working_days,
        )


class NoticeRead(BaseModel):
    """A warning for people: stable code and params, and its text in the request's language."""

    code: str
    params: dict[str, Any]
    message: str


class OrderDeadlinesRead(BaseModel):
    order_id: int
    as_of: date
    provisional: bool
    missing_years: list[int]
    clocks: list[ClockRead]
    warnings: list[str] = Field(description="The stage warnings in English.")
    notices: list[NoticeRead] = Field(
        description="The same warnings with code, params and message (request's language)."
    )

    @classmethod
    def of(
        cls,
        order_id: int,
        result: rules.OrderDeadlines,
        language: str = messages.DEFAULT_LANGUAGE,
    ) -> OrderDeadlinesRead:
        return cls(
            order_id=order_id,
            as_of=result.as_of,
            provisional=result.provisional,
            missing_years=list(result.missing_years),
            clocks=[ClockRead.of(c) for c in result.clocks],
            warnings=list(result.warnings),
            notices=[
                NoticeRead(code=n.code, params=dict(n.params), message=n.render(language))
                for n in result.notices
            ],
        )


class PauseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=40, description="A configured pause reason.")
    note: Text | None = Field(default=None, max_length=2000)


class PauseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    reason: str
    message: str = Field(description="The reason for people, in the request's language.")
    note: str | None
    started_at: datetime
    started_by: int | None
    ended_at: datetime | None
    ended_by: int | None

    @classmethod
    def of(cls, pause: ClockPause, language: str = messages.DEFAULT_LANGUAGE) -> PauseRead:
        key = f"pause_reason.{pause.reason}"
        label = messages.render(key, {}, language) if key in messages.MESSAGES else pause.reason
        return cls(
            id=pause.id,
            order_id=pause.order_id,
            reason=pause.reason,
            message=label,
            note=pause.note,
            started_at=pause.started_at,
            started_by=pause.started_by,
            ended_at=pause.ended_at,
            ended_by=pause.ended_by,
        )


class VisitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_start: IsoAwareDatetime
    window_end: IsoAwareDatetime
    note: Text | None = Field(default=None, max_length=2000)


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    crew_id: int | None
    window_start: datetime
    window_end: datetime
    note: str | None
    booked_by: int | None
    booked_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, visit: PlannedVisit) -> VisitRead:
        return cls.model_validate(visit)


class AttentionItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: int
    crew_id: int | None
    district_id: int
    stage: Stage
    clock: str
    governing: bool
    due_on: date
    provisional: bool
    missing_years: list[int]
    status: rules.ClockStatus
    paused: bool

    @classmethod
    def of(cls, item: AttentionItem) -> AttentionItemRead:
        return cls.model_validate(item)


class AttentionGroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    district_id: int
    crew_id: int | None
    at_risk: int
    overdue: int
    stage_warnings: int

    @classmethod
    def of(cls, group: AttentionGroup) -> AttentionGroupRead:
        return cls.model_validate(group)


class AttentionRead(BaseModel):
    """Orders due within the at-risk horizon or overdue, and their counts by crew/district."""

    as_of: date
    items: list[AttentionItemRead]
    by_district_and_crew: list[AttentionGroupRead]
    total: int = Field(description="Items on every page.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")


class ComplianceRowRead(BaseModel):
    clock: str
    met: int
    missed: int
    finished: int
    rate: float | None

    @classmethod
    def of(cls, row: rules.Compliance) -> ComplianceRowRead:
        return cls(
            clock=row.name,
            met=row.met,
            missed=row.missed,
            finished=row.finished,
            rate=row.rate,
        )


class ComplianceGroupRead(BaseModel):
    """One clock's compliance for a crew or district (code and name) or for all (``all``)."""

    code: str
    name: str
    clock: str
    met: int
    missed: int
    finished: int
    rate: float | None


class ComplianceRead(BaseModel):
    period_from: date
    period_to: date
    rows: list[ComplianceRowRead]
    groups: list[ComplianceGroupRead] = Field(
        default_factory=list,
        description="With ``group_by``: every clock per crew or district, by code.",
    )


class RecomputeRead(BaseModel):
    orders_recomputed: int

"""Request and response bodies of planned-outage budgets, requests, merges and live-line work."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from field_api.reliability.planning_rules import NoticeKind, NoticeState, RequestState
from field_api.types import FiniteFloat, IsoDate, IsoDatetime, PositiveDbInt, Text

Code = Field(min_length=1, max_length=64)


class BudgetSet(BaseModel):
    """A planner's yearly budget of planned-outage customer-hours for a district, and why."""

    customer_hours: FiniteFloat = Field(ge=0, le=100_000_000)
    reason: Text = Field(min_length=3, max_length=500)


class BudgetRead(BaseModel):
    """A district's budget for a year: set (or proposed, not yet set), used, left.

    ``used_customer_hours`` counts each approved request once: the customer-hours of its
    recorded outage once that is closed, its planned customer-hours before. ``live_line_*``:
    customer-hours avoided by live-line work that year, beside the budget."""

    district: str
    year: int
    customer_hours: float
    set: bool
    proposed_customer_hours: float
    method: str
    fault_share: float
    customers: int
    reason: str
    used_customer_hours: float
    left_customer_hours: float
    live_line_jobs: int
    live_line_customer_hours_avoided: float


class PlannedOutageCreate(BaseModel):
    """A planned-outage request: the work, the feeder section (its switch), the window."""

    work: Text = Field(min_length=2, max_length=500)
    switch_code: Text = Code
    start_at: IsoDatetime
    end_at: IsoDatetime
    requester: Text | None = Field(default=None, min_length=1, max_length=200)


class PlannedOutageApprove(BaseModel):
    """A planner's approval; ``overspend_reason`` approves one that overspends the budget."""

    overspend_reason: Text | None = Field(default=None, min_length=3, max_length=500)


class PlannedOutageCancel(BaseModel):
    """Why the planned outage is cancelled (kept on the audit trail)."""

    reason: Text = Field(min_length=3, max_length=500)


class WindowMove(BaseModel):
    """A new window for an approved (or requested) planned outage."""

    start_at: IsoDatetime
    end_at: IsoDatetime


class WorkRead(BaseModel):
    """One work done in the outage and who asked for it."""

    request_id: int
    work: str
    requester: str


class PlannedOutageRead(BaseModel):
    """A planned-outage request with its cost and the district's budget left after it."""

    id: int
    state: RequestState
    district: str
    switch_code: str
    feeder: str
    transformer_codes: list[str]
    work: str
    requester: str
    works: list[WorkRead]
    start_at: datetime
    start_at_local: str
    end_at: datetime
    end_at_local: str
    hours: float
    customers: int
    customer_hours: float
    year: int
    budget_customer_hours: float
    budget_left_after: float
    overspend: bool
    overspend_reason: str | None
    merged_into: int | None
    window_version: int
    outage_id: int | None
    approved_at: datetime | None


class MergeProposalRead(BaseModel):
    """Requests on one feeder section that one outage can serve, and what that saves."""

    switch_code: str
    request_ids: list[int]
    works: list[WorkRead]
    customers: int
    separate_customer_hours: float
    merged_customer_hours: float
    saved_customer_hours: float
    start_at: datetime
    end_at: datetime
    start_at_local: str
    end_at_local: str


class MergeCreate(BaseModel):
    """Requests to do in one outage (two or more, same feeder section, all requested)."""

    request_ids: list[PositiveDbInt] = Field(min_length=2, max_length=50)


class PlannedOutageStart(BaseModel):
    """The planned outage began (default: now): record it as an outage of order 18."""

    start_at: IsoDatetime | None = None


class LiveLineCreate(BaseModel):
    """Live-line work done instead of an outage: what, where, when, the hours an outage of
    that section would have taken."""

    work: Text = Field(min_length=2, max_length=500)
    switch_code: Text = Code
    done_on: IsoDate
    outage_hours: FiniteFloat = Field(gt=0, le=72)


class LiveLineRead(BaseModel):
    id: int
    district: str
    switch_code: str | None
    transformer_codes: list[str]
    work: str
    done_on: date
    outage_hours: float
    customers: int
    customer_hours_avoided: float


class OutageNoticeRead(BaseModel):
    """A notice of a planned outage to one account (the number masked)."""

    request_id: int
    account_no: str
    phone_masked: str
    kind: NoticeKind
    window_version: int
    state: NoticeState
    due_at: datetime
    sent_at: datetime | None


class BurnMonthRead(BaseModel):
    month: int
    used_customer_hours: float
    cumulative_customer_hours: float
    left_customer_hours: float


class DistrictBurnRead(BaseModel):
    district: str
    budget_customer_hours: float
    used_customer_hours: float
    live_line_customer_hours_avoided: float
    live_line_share: float | None
    months: list[BurnMonthRead]


class BudgetDashboardRead(BaseModel):
    """The planner page: the burn-down per district, merge proposals and the live-line share
    (customer-hours avoided over avoided plus used)."""

    year: int
    districts: list[DistrictBurnRead]
    proposals: list[MergeProposalRead]

"""HTTP endpoints of planned outages: budgets, requests, merges, live-line work, notices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, UploadFile, status

from field_api.common import clock
from field_api.common.csvfiles import csv_response
from field_api.deps import AppSettings, CurrentUser, DbSession
from field_api.errors import PayloadTooLarge
from field_api.paging import Page
from field_api.reliability import merging, planning
from field_api.reliability.planning_rules import RequestState
from field_api.reliability.planning_schemas import (
    BudgetDashboardRead,
    BudgetRead,
    BudgetSet,
    LiveLineCreate,
    LiveLineRead,
    MergeCreate,
    MergeProposalRead,
    OutageNoticeRead,
    PlannedOutageApprove,
    PlannedOutageCancel,
    PlannedOutageCreate,
    PlannedOutageRead,
    PlannedOutageStart,
    WindowMove,
)
from field_api.types import CSV_RESPONSES, IdPath, Text

router = APIRouter(prefix="/reliability", tags=["reliability"])

YearQuery = Annotated[int | None, Query(ge=2000, le=2100)]
YearPath = Annotated[int, Path(ge=2000, le=2100)]
DistrictPath = Annotated[Text, Path(min_length=1, max_length=64)]
DistrictQuery = Annotated[Text | None, Query(min_length=1, max_length=64)]

BUDGET_COLUMNS = (
    "district", "year", "customer_hours", "set", "proposed_customer_hours", "method",
    "fault_share", "customers", "used_customer_hours", "left_customer_hours",
    "live_line_customer_hours_avoided",
)
REQUEST_COLUMNS = (
    "id", "state", "district", "switch_code", "feeder", "work", "requester", "start_at",
    "end_at", "hours", "customers", "customer_hours", "budget_left_after", "overspend_reason",
    "merged_into", "outage_id",
)
PROPOSAL_COLUMNS = (
    "switch_code", "request_ids", "customers", "separate_customer_hours",
    "merged_customer_hours", "saved_customer_hours", "start_at", "end_at",
)
LIVE_LINE_COLUMNS = (
    "id", "district", "switch_code", "work", "done_on", "outage_hours", "customers",
    "customer_hours_avoided",
)
BURN_COLUMNS = (
    "district", "month", "budget_customer_hours", "used_customer_hours",
    "cumulative_customer_hours", "left_customer_hours",
)


MAX_IMPORT_BYTES = 5 * 1024 * 1024


def read_upload(file: UploadFile) -> bytes:
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"reliability files are limited to {MAX_IMPORT_BYTES} bytes",
            code="reliability.file_too_large",
            params={"limit_bytes": MAX_IMPORT_BYTES},
        )
    return data


def _year(year: int | None) -> int:
    return year or clock.china_today().year


@router.get("/outage-budget")
def outage_budget(
    session: DbSession, settings: AppSettings, user: CurrentUser, year: YearQuery = None
) -> BudgetDashboardRead:
    """The planner page's figures: burn-down per district (budget against the customer-hours
    of approved planned outages, cumulative by month), merge proposals, live-line share."""
    return merging.dashboard(session, settings, user, year=year)


@router.get("/outage-budget.csv", response_class=Response, responses=CSV_RESPONSES)
def outage_budget_csv(
    request: Request, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None,
) -> Response:
    """The burn-down as CSV: one row per district and month."""
    found = merging.dashboard(session, settings, user, year=year)
    rows = [
        {"district": d.district, "budget_customer_hours": d.budget_customer_hours,
         **m.model_dump(), "month": f"{found.year}-{m.month:02d}"}
        for d in found.districts for m in d.months
    ]
    return csv_response(request, rows, BURN_COLUMNS, filename=f"outage-budget-{found.year}")


@router.get("/budgets")
def list_budgets(
    page: Page, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None,
) -> list[BudgetRead]:
    """Every district's planned-outage budget for a year (set, or proposed with its method)."""
    return page.apply(planning.budgets(session, settings, user, _year(year)))


@router.get("/budgets.csv", response_class=Response, responses=CSV_RESPONSES)
def budgets_csv(
    request: Request, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None,
) -> Response:
    """The districts' budgets as CSV."""
    rows = planning.budgets(session, settings, user, _year(year))
    return csv_response(request, [r.model_dump() for r in rows], BUDGET_COLUMNS,
                        filename=f"outage-budgets-{_year(year)}")


@router.get("/budgets/{district}/{year}")
def get_budget(
    district: DistrictPath, year: YearPath, session: DbSession, settings: AppSettings,
    user: CurrentUser,
) -> BudgetRead:
    """One district's budget for a year: set or proposed, used, left, live-line avoided."""
    return planning.read_budget(session, settings, user, district, year)


@router.put("/budgets/{district}/{year}")
def set_budget(
    district: DistrictPath, year: YearPath, body: BudgetSet, session: DbSession,
    settings: AppSettings, user: CurrentUser,
) -> BudgetRead:
    """A planner sets a district's yearly planned-outage customer-hours (audited)."""
    return planning.set_budget(session, settings, user, district, year, body)


@router.post("/planned-outages", status_code=status.HTTP_201_CREATED)
def request_outage(
    body: PlannedOutageCreate, session: DbSession, settings: AppSettings, user: CurrentUser
) -> PlannedOutageRead:
    """Request a planned outage of a feeder section (dispatchers): its customers, its cost in
    customer-hours and the district's budget left after it."""
    return planning.request_outage(session, settings, body, user)


@router.post("/planned-outages/imports", status_code=status.HTTP_201_CREATED)
def import_requests(
    file: UploadFile, session: DbSession, settings: AppSettings, user: CurrentUser
) -> list[PlannedOutageRead]:
    """Planned-outage requests from CSV (dispatchers; ``work, switch_code, start_at, end_at``
    and an optional ``requester``; all rows or none, 422 listing each bad row)."""
    return planning.import_requests(
        session, settings, read_upload(file), filename=file.filename or "upload", actor=user
    )


@router.get("/planned-outages")
def list_requests(
    page: Page, session: DbSession, settings: AppSettings, user: CurrentUser,
    state: RequestState | None = None, year: YearQuery = None, district: DistrictQuery = None,
) -> list[PlannedOutageRead]:
    """Planned-outage requests by start."""
    return planning.requests_page(session, settings, user, page, state=state, year=year,
                                  district=district)


@router.get("/planned-outages.csv", response_class=Response, responses=CSV_RESPONSES)
def requests_csv(
    request: Request, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None, district: DistrictQuery = None,
) -> Response:
    """Planned-outage requests as CSV."""
    rows = planning.all_requests(session, settings, user, year=year, district=district)
    return csv_response(request, [r.model_dump() for r in rows], REQUEST_COLUMNS,
                        filename="planned-outages")


@router.get("/planned-outages/{request_id}")
def get_request(
    request_id: IdPath, session: DbSession, settings: AppSettings, user: CurrentUser
) -> PlannedOutageRead:
    """One planned-outage request with its works."""
    return planning.read_one(session, settings, user, request_id)


@router.post("/planned-outages/{request_id}/approve")
def approve(
    request_id: IdPath, body: PlannedOutageApprove, session: DbSession, settings: AppSettings,
    user: CurrentUser,
) -> PlannedOutageRead:
    """A planner approves (409 ``reliability.budget_overspent`` unless an overspend reason is
    given when it would overspend); the affected customers' notices are scheduled."""
    return planning.approve(session, settings, request_id, body, user)


@router.put("/planned-outages/{request_id}/window")
def move(
    request_id: IdPath, body: WindowMove, session: DbSession, settings: AppSettings,
    user: CurrentUser,
) -> PlannedOutageRead:
    """Move the window; customers already told get a correction."""
    return planning.move(session, settings, request_id, body, user)


@router.post("/planned-outages/{request_id}/cancel")
def cancel(
    request_id: IdPath, body: PlannedOutageCancel, session: DbSession, settings: AppSettings,
    user: CurrentUser,
) -> PlannedOutageRead:
    """Cancel; customers already told are told it is off."""
    return planning.cancel(session, settings, request_id, body, user)


@router.post("/planned-outages/{request_id}/outage")
def start_outage(
    request_id: IdPath, body: PlannedOutageStart, session: DbSession, settings: AppSettings,
    user: CurrentUser,
) -> PlannedOutageRead:
    """The planned outage began: record it as an outage (the indices count it) and link it."""
    return planning.start_outage(session, settings, request_id, body, user)


@router.get("/planned-outages/{request_id}/notices")
def list_notices(
    request_id: IdPath, page: Page, session: DbSession, user: CurrentUser
) -> list[OutageNoticeRead]:
    """The customers' notices of a planned outage (numbers masked)."""
    return planning.notices_page(session, user, request_id, page)


@router.get("/merge-proposals")
def merge_proposals(
    page: Page, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None,
) -> list[MergeProposalRead]:
    """Waiting requests one outage could serve, with the customer-hours saved."""
    return page.apply(merging.proposals(session, settings, user, year=year))


@router.get("/merge-proposals.csv", response_class=Response, responses=CSV_RESPONSES)
def merge_proposals_csv(
    request: Request, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None,
) -> Response:
    """The merge proposals as CSV (request ids separated by ``;``)."""
    rows = [
        {**p.model_dump(), "request_ids": ";".join(str(i) for i in p.request_ids)}
        for p in merging.proposals(session, settings, user, year=year)
    ]
    return csv_response(request, rows, PROPOSAL_COLUMNS, filename="merge-proposals")


@router.post("/merges")
def merge(
    body: MergeCreate, session: DbSession, settings: AppSettings, user: CurrentUser
) -> PlannedOutageRead:
    """Do these requests in one outage (planners): each keeps its work and requester."""
    return merging.merge(session, settings, body, user)


@router.post("/live-line-jobs", status_code=status.HTTP_201_CREATED)
def record_live_line(
    body: LiveLineCreate, session: DbSession, user: CurrentUser
) -> LiveLineRead:
    """Live-line work done instead of an outage (dispatchers): the customer-hours avoided."""
    return merging.record_live_line(session, body, user)


@router.get("/live-line-jobs")
def list_live_line(
    page: Page, session: DbSession, user: CurrentUser, year: YearQuery = None,
    district: DistrictQuery = None,
) -> list[LiveLineRead]:
    """Live-line work of a year."""
    return page.apply(merging.live_line_jobs(session, user, year=_year(year), district=district))


@router.get("/live-line-jobs.csv", response_class=Response, responses=CSV_RESPONSES)
def live_line_csv(
    request: Request, session: DbSession, user: CurrentUser, year: YearQuery = None,
    district: DistrictQuery = None,
) -> Response:
    """Live-line work of a year as CSV."""
    rows = merging.live_line_jobs(session, user, year=_year(year), district=district)
    return csv_response(request, [r.model_dump() for r in rows], LIVE_LINE_COLUMNS,
                        filename=f"live-line-{_year(year)}")

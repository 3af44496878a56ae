"""Planned outages against a yearly customer-hours budget; merging; live-line work.

Who does what: dispatchers (and admins) request planned outages, record live-line work and
record the outage when it begins; planners (and admins) set budgets, approve requests (an
overspend only with a reason) and merge requests; dispatchers and planners move or cancel.

What is counted where (never twice):

- the **budget** counts each approved request once, in the China year of its start: the
  customer-hours of its recorded outage once that outage is closed, its planned
  customer-hours (customers x window hours) until then; requested, merged (their work is in
  the host's outage) and cancelled requests count nothing;
- the **indices** (order 18) count only recorded outages: approval does not create one (its
  window is in the future); ``POST /reliability/planned-outages/{id}/outage`` records it when
  it begins (kind planned, cause planned_maintenance, the section's transformers, ref
  ``PO-<id>``) and links it to the request;
- **live-line work** is never in the budget nor the indices: its customer-hours avoided are
  reported beside the budget.

Every write is recorded on the audit chain. Notices: :mod:`field_api.reliability.notices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from pydantic import ValidationError as PydanticError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, DomainError, NotFound, ValidationFailed
from field_api.paging import PageParams
from field_api.reliability import notices, outages, planning_rules, report, rules
from field_api.reliability.models import (
    Customer,
    LiveLineJob,
    Outage,
    OutageBudget,
    OutageSegment,
    PlannedOutageRequest,
)
from field_api.reliability.planning_rules import RequestState
from field_api.reliability.planning_schemas import (
    BudgetRead,
    BudgetSet,
    OutageNoticeRead,
    PlannedOutageApprove,
    PlannedOutageCancel,
    PlannedOutageCreate,
    PlannedOutageRead,
    PlannedOutageStart,
    WindowMove,
    WorkRead,
)
from field_api.reliability.register import READ_ROLES, refuse_rows, require
from field_api.reliability.rules import Cause, OutageKind
from field_api.reliability.schemas import OutageCreate
from field_api.reliability.sections import (
    customers_of,
    district_customers,
    require_district,
    section,
)

REQUEST_ROLES = (Role.dispatcher, Role.admin)
PLAN_ROLES = (Role.planner, Role.admin)
CHANGE_ROLES = (Role.dispatcher, Role.planner, Role.admin)
MAX_WINDOW_H = 72.0


def invalid(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, code="reliability.planned_outage_invalid",
                            params={"reason": reason})


def local(moment: datetime) -> str:
    return clock.to_china(moment).isoformat(timespec="minutes")


def _utc(value: datetime) -> datetime:
    """A given time in UTC (a naive one is China time)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.CHINA_TZ)
    return value.astimezone(UTC)


def window(start_at: datetime, end_at: datetime) -> tuple[datetime, datetime]:
    start, end = _utc(start_at), _utc(end_at)
    if end <= start:
        raise invalid("end_at is not after start_at")
    if planning_rules.hours_between(start, end) > MAX_WINDOW_H:
        raise invalid(f"a planned outage lasts at most {MAX_WINDOW_H:g} hours")
    return start, end


def year_of(moment: datetime) -> int:
    return clock.china_date(moment).year


# --- budgets -----------------------------------------------------------------------------------


def _last_year_share(session: Session, district: str, year: int) -> float | None:
    found = report.interruptions(session, date(year - 1, 1, 1), date(year, 1, 1), clock.now())
    return planning_rules.fault_share([i for i in found if i.district == district])


def proposal(
    session: Session, settings: Settings, district: str, year: int
) -> tuple[planning_rules.Proposal, int]:
    """The proposed budget and the district's customers (on Jan 1st, or today if later)."""
    day = min(max(date(year, 1, 1), clock.china_today()), date(year, 12, 31))
    customers = district_customers(session, district, day)
    found = planning_rules.propose_budget(
        customers, urban_h=settings.reliability.target_urban_h,
        rural_h=settings.reliability.target_rural_h,
        last_fault_share=_last_year_share(session, district, year),
    )
    return found, sum(customers.values())


def budget_row(session: Session, district: str, year: int) -> OutageBudget | None:
    return session.execute(
        select(OutageBudget).where(OutageBudget.district == district, OutageBudget.year == year)
    ).scalar_one_or_none()


def budget_amount(session: Session, settings: Settings, district: str, year: int) -> float:
    row = budget_row(session, district, year)
    if row is not None:
        return row.customer_hours
    return proposal(session, settings, district, year)[0].customer_hours


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return (datetime(year, 1, 1, tzinfo=clock.CHINA_TZ).astimezone(UTC),
            datetime(year + 1, 1, 1, tzinfo=clock.CHINA_TZ).astimezone(UTC))


def approved_in(session: Session, district: str | None, year: int) -> list[PlannedOutageRequest]:
    start, end = _year_bounds(year)
    query = select(PlannedOutageRequest).where(
        PlannedOutageRequest.state == RequestState.approved.value,
        PlannedOutageRequest.start_at >= start, PlannedOutageRequest.start_at < end,
    ).order_by(PlannedOutageRequest.start_at, PlannedOutageRequest.id)
    if district is not None:
        query = query.where(PlannedOutageRequest.district == district)
    return list(session.execute(query).scalars())


def counted_hours(session: Session, request: PlannedOutageRequest) -> float:
    """What an approved request counts: its closed outage's customer-hours, else the plan."""
    if request.outage_id is not None:
        outage = session.get(Outage, request.outage_id)
        if outage is not None and outage.end_at is not None:
            segments = session.execute(
                select(OutageSegment).where(OutageSegment.outage_id == outage.id)
            ).scalars()
            return round(sum(
                s.customers * planning_rules.hours_between(outage.start_at, s.restored_at)
                for s in segments if s.restored_at is not None
            ), 4)
    return request.customer_hours


def used(session: Session, district: str, year: int) -> float:
    return round(sum(counted_hours(session, r) for r in approved_in(session, district, year)), 4)


def live_line_in(session: Session, district: str | None, year: int) -> list[LiveLineJob]:
    query = select(LiveLineJob).where(
        LiveLineJob.done_on >= date(year, 1, 1), LiveLineJob.done_on < date(year + 1, 1, 1)
    ).order_by(LiveLineJob.done_on, LiveLineJob.id)
    if district is not None:
        query = query.where(LiveLineJob.district == district)
    return list(session.execute(query).scalars())


def read_budget(
    session: Session, settings: Settings, actor: Principal, district: str, year: int
) -> BudgetRead:
    require(actor, READ_ROLES, "read outage budgets")
    require_district(session, district)
    found, customers = proposal(session, settings, district, year)
    row = budget_row(session, district, year)
    amount = row.customer_hours if row else found.customer_hours
    spent = used(session, district, year)
    live = live_line_in(session, district, year)
    return BudgetRead(
        district=district, year=year, customer_hours=amount, set=row is not None,
        proposed_customer_hours=found.customer_hours, method=found.method.value,
        fault_share=round(found.fault_share, 4), customers=customers,
        reason=row.reason if row else "", used_customer_hours=spent,
        left_customer_hours=round(amount - spent, 4), live_line_jobs=len(live),
        live_line_customer_hours_avoided=round(sum(j.customer_hours_avoided for j in live), 4),
    )


def set_budget(
    session: Session, settings: Settings, actor: Principal, district: str, year: int,
    body: BudgetSet,
) -> BudgetRead:
    """A planner sets (or changes) a district's budget for a year (audited)."""
    require(actor, PLAN_ROLES, "set outage budgets")
    require_district(session, district)
    found, _ = proposal(session, settings, district, year)
    row = budget_row(session, district, year)
    if row is None:
        row = OutageBudget(district=district, year=year, customer_hours=body.customer_hours)
        session.add(row)
    row.customer_hours, row.reason = body.customer_hours, body.reason
    row.proposed_customer_hours, row.method = found.customer_hours, found.method.value
    row.fault_share, row.set_by, row.set_at = found.fault_share, actor.user_id, clock.now()
    session.flush()
    audit.record(session, actor=actor, action="reliability.budget_set", entity=row)
    return read_budget(session, settings, actor, district, year)


# --- requests ----------------------------------------------------------------------------------


def get_request(session: Session, request_id: int) -> PlannedOutageRequest:
    found = session.get(PlannedOutageRequest, request_id)
    if found is None:
        raise NotFound(f"planned outage {request_id} does not exist",
                       code="reliability.planned_outage_not_found",
                       params={"request_id": request_id})
    return found


def works_of(session: Session, request: PlannedOutageRequest) -> list[WorkRead]:
    members = session.execute(
        select(PlannedOutageRequest).where(PlannedOutageRequest.merged_into == request.id)
        .order_by(PlannedOutageRequest.id)
    ).scalars()
    return [WorkRead(request_id=r.id, work=r.work, requester=r.requester)
            for r in (request, *members)]


Standing = dict[tuple[str, int], tuple[float, float]]


def _standing(
    session: Session, settings: Settings, district: str, year: int, memo: Standing | None
) -> tuple[float, float]:
    """(budget, used) of a district's year, remembered in ``memo`` across one list."""
    key = (district, year)
    if memo is not None and key in memo:
        return memo[key]
    found = (budget_amount(session, settings, district, year), used(session, district, year))
    if memo is not None:
        memo[key] = found
    return found


def read_request(
    session: Session, settings: Settings, request: PlannedOutageRequest,
    memo: Standing | None = None,
) -> PlannedOutageRead:
    """The request, its cost and the budget left after it (after it is approved, for a
    request still waiting)."""
    year = year_of(request.start_at)
    budget, spent = _standing(session, settings, request.district, year, memo)
    left = budget - spent
    if request.state == RequestState.requested.value:
        left -= request.customer_hours
    return PlannedOutageRead(
        id=request.id, state=RequestState(request.state), district=request.district,
        switch_code=request.switch_code, feeder=request.feeder,
        transformer_codes=list(request.transformer_codes), work=request.work,
        requester=request.requester, works=works_of(session, request),
        start_at=request.start_at, start_at_local=local(request.start_at),
        end_at=request.end_at, end_at_local=local(request.end_at),
        hours=round(planning_rules.hours_between(request.start_at, request.end_at), 4),
        customers=request.customers, customer_hours=request.customer_hours, year=year,
        budget_customer_hours=budget, budget_left_after=round(left, 4), overspend=left < 0,
        overspend_reason=request.overspend_reason, merged_into=request.merged_into,
        window_version=request.window_version, outage_id=request.outage_id,
        approved_at=request.approved_at,
    )


def _cost(
    session: Session, codes: Sequence[str], start: datetime, end: datetime
) -> tuple[int, float]:
    count = len(customers_of(session, codes, clock.china_date(start)))
    if count == 0:
        raise invalid("no customer on the register is below this switch")
    return count, planning_rules.cost(count, planning_rules.hours_between(start, end))


def request_outage(
    session: Session, settings: Settings, body: PlannedOutageCreate, actor: Principal
) -> PlannedOutageRead:
    """A dispatcher's planned-outage request: its customers from the register, its cost."""
    require(actor, REQUEST_ROLES, "request planned outages")
    start, end = window(body.start_at, body.end_at)
    feeder, district, codes = section(session, body.switch_code)
    customers, hours = _cost(session, codes, start, end)
    request = PlannedOutageRequest(
        district=district, switch_code=body.switch_code, feeder=feeder, transformer_codes=codes,
        work=body.work, requester=body.requester or actor.name, requested_by=actor.user_id,
        start_at=start, end_at=end, customers=customers, customer_hours=hours,
        state=RequestState.requested.value, window_version=1, created_at=clock.now(),
    )
    session.add(request)
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_requested",
                 entity=request)
    return read_request(session, settings, request)


def _state(request: PlannedOutageRequest, *allowed: RequestState) -> None:
    if request.state not in {s.value for s in allowed}:
        raise Conflict(
            f"planned outage {request.id} is {request.state}",
            code="reliability.planned_outage_state",
            params={"request_id": request.id, "state": request.state},
        )


def _refuse_overspend(
    session: Session, settings: Settings, request: PlannedOutageRequest, extra: float
) -> None:
    """409 when ``extra`` customer-hours more would overspend the request's district budget."""
    year = year_of(request.start_at)
    session.execute(  # approvals against one set budget wait for each other
        select(OutageBudget.id).where(OutageBudget.district == request.district,
                                      OutageBudget.year == year).with_for_update()
    )
    budget = budget_amount(session, settings, request.district, year)
    left = round(budget - used(session, request.district, year) - extra, 4)
    if left < 0:
        raise Conflict(
            f"planned outage {request.id} would overspend {request.district}'s {year} budget",
            code="reliability.budget_overspent",
            params={"request_id": request.id, "district": request.district, "year": year,
                    "customer_hours": round(extra, 4), "left": left},
        )


def approve(
    session: Session, settings: Settings, request_id: int, body: PlannedOutageApprove,
    actor: Principal,
) -> PlannedOutageRead:
    """A planner approves: refused with 409 ``reliability.budget_overspent`` when it would
    overspend, unless ``overspend_reason`` is given; schedules the customers' notices."""
    require(actor, PLAN_ROLES, "approve planned outages")
    request = get_request(session, request_id)
    _state(request, RequestState.requested)
    if body.overspend_reason is None:
        _refuse_overspend(session, settings, request, request.customer_hours)
    request.state = RequestState.approved.value
    request.overspend_reason = body.overspend_reason
    request.approved_by, request.approved_at = actor.user_id, clock.now()
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_approved",
                 entity=request, detail="overspend" if body.overspend_reason else None)
    notices.schedule_window(session, settings, request)
    return read_request(session, settings, request)


def move(
    session: Session, settings: Settings, request_id: int, body: WindowMove, actor: Principal
) -> PlannedOutageRead:
    """A new window: the cost is recomputed (an approved one that would now overspend is
    refused unless it was approved with an overspend reason); notices of the old window
    never go out, customers already told get a correction."""
    require(actor, CHANGE_ROLES, "move planned outages")
    request = get_request(session, request_id)
    _state(request, RequestState.requested, RequestState.approved)
    if request.outage_id is not None:
        raise Conflict(f"planned outage {request_id} has begun",
                       code="reliability.planned_outage_begun", params={"request_id": request_id})
    start, end = window(body.start_at, body.end_at)
    customers, hours = _cost(session, request.transformer_codes, start, end)
    approved = request.state == RequestState.approved.value
    if approved and request.overspend_reason is None and hours > request.customer_hours:
        _refuse_overspend(session, settings, request, hours - request.customer_hours)
    request.start_at, request.end_at = start, end
    request.customers, request.customer_hours = customers, hours
    request.window_version += 1
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_moved", entity=request)
    if approved:
        notices.window_moved(session, settings, request)
    return read_request(session, settings, request)


def cancel(
    session: Session, settings: Settings, request_id: int, body: PlannedOutageCancel,
    actor: Principal,
) -> PlannedOutageRead:
    """Cancel a request (and the works merged into it); customers already told are told."""
    require(actor, CHANGE_ROLES, "cancel planned outages")
    request = get_request(session, request_id)
    _state(request, RequestState.requested, RequestState.approved)
    if request.outage_id is not None:
        raise Conflict(f"planned outage {request_id} has begun",
                       code="reliability.planned_outage_begun", params={"request_id": request_id})
    was_approved = request.state == RequestState.approved.value
    request.state = RequestState.cancelled.value
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_cancelled",
                 entity=request, detail=body.reason)
    if was_approved:
        notices.cancelled(session, settings, request)
    return read_request(session, settings, request)


def start_outage(
    session: Session, settings: Settings, request_id: int, body: PlannedOutageStart,
    actor: Principal,
) -> PlannedOutageRead:
    """The approved outage began: record order 18's outage (which the indices count) and
    link it; from its close the budget counts its customer-hours instead of the plan."""
    require(actor, REQUEST_ROLES, "record planned outages")
    request = get_request(session, request_id)
    _state(request, RequestState.approved)
    if request.outage_id is not None:
        raise Conflict(f"planned outage {request_id} has begun",
                       code="reliability.planned_outage_begun", params={"request_id": request_id})
    works = "; ".join(w.work for w in works_of(session, request))
    outage = outages.build_outage(session, OutageCreate(
        kind=OutageKind.planned, cause=Cause.planned_maintenance, start_at=body.start_at,
        ref=f"PO-{request.id}", switch_code=request.switch_code, note=works[:500],
    ), actor)
    audit.record(session, actor=actor, action="reliability.outage_recorded", entity=outage)
    request.outage_id = outage.id
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_begun", entity=request)
    return read_request(session, settings, request)


# --- reads -------------------------------------------------------------------------------------


def _requests_query(
    state: RequestState | None, year: int | None, district: str | None
) -> Select[PlannedOutageRequest]:
    query = select(PlannedOutageRequest).order_by(
        PlannedOutageRequest.start_at, PlannedOutageRequest.id
    )
    if state is not None:
        query = query.where(PlannedOutageRequest.state == state.value)
    if year is not None:
        start, end = _year_bounds(year)
        query = query.where(PlannedOutageRequest.start_at >= start,
                            PlannedOutageRequest.start_at < end)
    if district is not None:
        query = query.where(PlannedOutageRequest.district == district)
    return query


def requests_page(
    session: Session, settings: Settings, actor: Principal, page: PageParams, *,
    state: RequestState | None = None, year: int | None = None, district: str | None = None,
) -> list[PlannedOutageRead]:
    """Planned-outage requests by start (of a state, year, district)."""
    require(actor, READ_ROLES, "read planned outages")
    query = _requests_query(state, year, district)
    memo: Standing = {}
    return [read_request(session, settings, r, memo) for r in page.select(session, query)]


def all_requests(
    session: Session, settings: Settings, actor: Principal, *, year: int | None = None,
    district: str | None = None,
) -> list[PlannedOutageRead]:
    require(actor, READ_ROLES, "read planned outages")
    query = _requests_query(None, year, district)
    memo: Standing = {}
    return [read_request(session, settings, r, memo)
            for r in session.execute(query).scalars()]


def read_one(
    session: Session, settings: Settings, actor: Principal, request_id: int
) -> PlannedOutageRead:
    require(actor, READ_ROLES, "read planned outages")
    return read_request(session, settings, get_request(session, request_id))


def notices_page(
    session: Session, actor: Principal, request_id: int, page: PageParams
) -> list[OutageNoticeRead]:
    """The notices of one planned outage (numbers masked)."""
    require(actor, READ_ROLES, "read planned-outage notices")
    get_request(session, request_id)
    return page.apply(notices.read_notices(session, request_id))


def budgets(
    session: Session, settings: Settings, actor: Principal, year: int
) -> list[BudgetRead]:
    """Every district's budget for ``year`` (set or proposed)."""
    return [read_budget(session, settings, actor, d, year) for d in districts(session, year)]


def districts(session: Session, year: int) -> list[str]:
    """The districts with customers, a budget for ``year`` or approved outages in it."""
    found = {d for (d,) in session.execute(select(Customer.district).distinct())}
    found |= {d for (d,) in session.execute(
        select(OutageBudget.district).where(OutageBudget.year == year))}
    found |= {r.district for r in approved_in(session, None, year)}
    return sorted(found)


# --- CSV import ---------------------------------------------------------------------------------

REQUEST_CSV_COLUMNS = ("work", "switch_code", "start_at", "end_at")


def import_requests(
    session: Session, settings: Settings, data: bytes, *, filename: str, actor: Principal
) -> list[PlannedOutageRead]:
    """Planned-outage requests from CSV (``work, switch_code, start_at, end_at`` and an
    optional ``requester``; times ISO 8601, a naive one China time), all rows or none: a file
    with a bad row is refused whole, listing each bad row (dispatchers, admins)."""
    require(actor, REQUEST_ROLES, "request planned outages")
    try:
        rows = rules.read_csv(data, REQUEST_CSV_COLUMNS)
    except rules.ReliabilityFileError as exc:
        raise ValidationFailed(
            str(exc), code="reliability.file_invalid", params={"reason": str(exc)}
        ) from exc
    errors: list[rules.RowError] = []
    made: list[PlannedOutageRead] = []
    for line, row in rows:
        values = {k: v for k, v in row.items() if k in (*REQUEST_CSV_COLUMNS, "requester") and v}
        try:
            made.append(request_outage(
                session, settings, PlannedOutageCreate.model_validate(values), actor))
        except PydanticError as exc:
            errors.append(rules.RowError(line, tuple(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())))
        except DomainError as exc:
            errors.append(rules.RowError(line, (str(exc.detail),)))
    refuse_rows(errors, filename)
    return made

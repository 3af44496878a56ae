"""HTTP endpoints of deadlines: an order's clocks, pauses, planned visits, planners' views."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request, Response, status

from field_api import paging
from field_api.common import clock, i18n
from field_api.common.actors import Principal, Role
from field_api.common.calendar import calendar_for
from field_api.common.csvfiles import csv_response
from field_api.deadlines import exports, service
from field_api.deadlines.schemas import (
    AttentionGroupRead,
    AttentionItemRead,
    AttentionRead,
    ComplianceGroupRead,
    ComplianceRead,
    ComplianceRowRead,
    OrderDeadlinesRead,
    PauseCreate,
    PauseRead,
    RecomputeRead,
    VisitCreate,
    VisitRead,
)
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.language import Lang, language_of
from field_api.paging import Page
from field_api.types import CSV_RESPONSES, DateQuery, IdPath, IdQuery, IsoDate

router = APIRouter(tags=["deadlines"])

FieldWork = Annotated[Principal, Depends(require_roles(Role.crew, Role.service, Role.admin))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("/work-orders/{order_id}/deadlines")
def get_order_deadlines(
    request: Request,
    order_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    as_of: DateQuery = None,
) -> OrderDeadlinesRead:
    """The order's time-limit clocks (end to end governs; provisional ones are marked)."""
    result = service.deadlines_for_actor(
        session, order_id, user, calendar=calendar_for(settings), as_of=as_of
    )
    return OrderDeadlinesRead.of(order_id, result, language_of(request))


@router.get("/work-orders/{order_id}/pauses")
def list_pauses(
    page: Page,
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[PauseRead]:
    """The order's clock pauses, oldest first (``message``: the reason in the request's
    language)."""
    pauses = service.pauses_for_actor(session, order_id, user)
    language = language_of(request)
    return page.apply([PauseRead.of(p, language) for p in pauses])


@router.post("/work-orders/{order_id}/pauses", status_code=status.HTTP_201_CREATED)
def start_pause(
    request: Request,
    order_id: IdPath,
    body: PauseCreate,
    session: DbSession,
    user: FieldWork,
    settings: AppSettings,
) -> PauseRead:
    """Stop the order's clocks for a customer-caused wait (409 if one is running)."""
    pause = service.start_pause_for_actor(
        session,
        order_id,
        reason=body.reason,
        note=body.note,
        actor=user,
        calendar=calendar_for(settings),
    )
    return PauseRead.of(pause, language_of(request))


@router.post("/work-orders/{order_id}/pauses/{pause_id}/end")
def end_pause(
    request: Request,
    order_id: IdPath,
    pause_id: IdPath,
    session: DbSession,
    user: FieldWork,
    settings: AppSettings,
) -> PauseRead:
    """Restart the order's clocks; the paused working days extend its deadlines."""
    pause = service.end_pause_for_actor(
        session, order_id, pause_id, actor=user, calendar=calendar_for(settings)
    )
    return PauseRead.of(pause, language_of(request))


@router.get("/work-orders/{order_id}/appointments")
def list_visits(
    page: Page, order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[VisitRead]:
    """The order's booked appointments (planned visit windows), oldest first."""
    visits = service.visits_for_actor(session, order_id, user)
    return page.apply([VisitRead.of(v) for v in visits])


@router.post("/work-orders/{order_id}/appointments", status_code=status.HTTP_201_CREATED)
def book_visit(
    order_id: IdPath, body: VisitCreate, session: DbSession, user: FieldWork
) -> VisitRead:
    """Book a visit window with the customer (the visits slice records the actual visit)."""
    visit = service.book_visit_for_actor(
        session,
        order_id,
        window_start=body.window_start,
        window_end=body.window_end,
        note=body.note,
        actor=user,
    )
    return VisitRead.of(visit)


@router.post("/work-orders/{order_id}/appointments/{visit_id}/cancel")
def cancel_visit(
    order_id: IdPath, visit_id: IdPath, session: DbSession, user: FieldWork
) -> VisitRead:
    """Cancel a booked appointment."""
    return VisitRead.of(service.cancel_visit_for_actor(session, order_id, visit_id, actor=user))


@router.get("/deadlines/attention")
def attention(
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    page: Page,
    as_of: DateQuery = None,
    crew_id: IdQuery = None,
    district_id: IdQuery = None,
) -> AttentionRead:
    """Orders due within one working day or overdue (one page of them: ``total`` and
    ``next_offset`` say what follows), with counts by district and crew over all of them."""
    day = as_of or clock.china_today()
    items = service.attention(
        session,
        user,
        as_of=day,
        crew_id=crew_id,
        district_id=district_id,
        calendar=calendar_for(settings),
    )
    shown = page.apply(items)
    return AttentionRead(
        as_of=day,
        items=[AttentionItemRead.of(i) for i in shown],
        by_district_and_crew=[AttentionGroupRead.of(g) for g in service.group_attention(items)],
        total=len(items),
        limit=page.limit,
        offset=page.offset,
        next_offset=paging.next_offset(page.offset, len(shown), len(items)),
    )


@router.get("/deadlines/attention.csv", response_class=Response, responses=CSV_RESPONSES)
def attention_csv(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    as_of: DateQuery = None,
    crew_id: IdQuery = None,
    district_id: IdQuery = None,
) -> Response:
    """The attention list of ``/deadlines/attention`` as CSV, soonest first: one row per
    order clock, its crew and district by code and name; stage, time limit and status by their
    names in the reader's language."""
    language = language_of(request)
    day = as_of or clock.china_today()
    rows = exports.attention_rows(
        session,
        user,
        language,
        as_of=day,
        crew_id=crew_id,
        district_id=district_id,
        calendar=calendar_for(settings),
    )
    return csv_response(request, rows, exports.ATTENTION_COLUMNS, filename=f"attention-{day}")


# The name of the row of all orders (code ``all``) in the reader's language.
ALL_NAMES: Final[dict[Lang, str]] = {"zh-CN": "全部", "en": "All"}
GroupBy = Annotated[
    service.ComplianceGroup | None,
    Query(description="Also list every clock per crew or district (``groups``, by code)."),
]


@router.get("/deadlines/compliance")
def compliance(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    period_from: Annotated[IsoDate, Query(alias="from")],
    period_to: Annotated[IsoDate, Query(alias="to")],
    crew_id: IdQuery = None,
    district_id: IdQuery = None,
    group_by: GroupBy = None,
) -> ComplianceRead:
    """Met and missed time limits per stage and end to end for clocks finished in a period."""
    rows = service.compliance(
        session,
        user,
        period_from=period_from,
        period_to=period_to,
        crew_id=crew_id,
        district_id=district_id,
    )
    groups = [] if group_by is None else service.compliance_by(
        session,
        user,
        period_from=period_from,
        period_to=period_to,
        group_by=group_by,
        all_name=ALL_NAMES[language_of(request)],
    )
    return ComplianceRead(
        period_from=period_from,
        period_to=period_to,
        rows=[ComplianceRowRead.of(r) for r in rows],
        groups=[ComplianceGroupRead(**asdict(g)) for g in groups],
    )


@router.get("/deadlines/compliance.csv", response_class=Response, responses=CSV_RESPONSES)
def compliance_csv(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    period_from: Annotated[IsoDate, Query(alias="from")],
    period_to: Annotated[IsoDate, Query(alias="to")],
    group_by: Annotated[service.ComplianceGroup, Query()] = "crew",
) -> Response:
    """Time-limit compliance as CSV: every clock per crew or district (by code and name), or
    of all orders (``group_by=all``); the time limit by its name in the reader's language."""
    language = language_of(request)
    rows = service.compliance_by(
        session,
        user,
        period_from=period_from,
        period_to=period_to,
        group_by=group_by,
        all_name=ALL_NAMES[language],
    )
    named = [asdict(r) | {"clock": i18n.name("clock", r.clock, language)} for r in rows]
    columns = ["code", "name", "clock", "met", "missed", "finished", "rate"]
    name = f"compliance-{group_by}-{period_from}-{period_to}"
    return csv_response(request, named, columns, filename=name)


@router.post("/deadlines/recompute-provisional")
def recompute_provisional(session: DbSession, _: Admin, settings: AppSettings) -> RecomputeRead:
    """Recompute every provisional deadline (after the calendar override gained a year)."""
    count = service.recompute_provisional(session, calendar=calendar_for(settings))
    return RecomputeRead(orders_recomputed=count)

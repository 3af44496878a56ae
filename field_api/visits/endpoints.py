"""HTTP endpoints of visits and the one-visit completion."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request, Response, status

from field_api.common.actors import Principal, Role
from field_api.common.csvfiles import csv_response
from field_api.deps import CurrentUser, DbSession, require_roles
from field_api.language import Lang, language_of
from field_api.paging import Page
from field_api.types import CSV_RESPONSES, IdPath, IsoDate
from field_api.visits import service
from field_api.visits.rules import gaps_in
from field_api.visits.schemas import (
    CompletionRead,
    OneVisitRead,
    TrendRead,
    VisitComplete,
    VisitCreate,
    VisitDepart,
    VisitRead,
)

router = APIRouter(tags=["visits"])

FieldWork = Annotated[Principal, Depends(require_roles(Role.crew, Role.admin))]
Planner = Annotated[Principal, Depends(require_roles(Role.planner, Role.admin))]
From = Annotated[IsoDate, Query(alias="from", description="First day (China time), inclusive.")]
To = Annotated[IsoDate, Query(alias="to", description="Last day (China time), inclusive.")]


# /work-orders/{id}/visits itself belongs to the deadlines slice (visits booked with the
# customer); a crew's arrival on site opens one of these visit records instead.
@router.post("/work-orders/{order_id}/visits/arrival", status_code=status.HTTP_201_CREATED)
def arrive(
    request: Request, order_id: IdPath, body: VisitCreate, session: DbSession, user: FieldWork
) -> VisitRead:
    """Record the crew's arrival on site (opens a visit)."""
    visit = service.arrive(
        session,
        order_id,
        actor=user,
        lat=body.lat,
        lon=body.lon,
        accuracy_m=body.accuracy_m,
        device_time=body.device_time,
    )
    return VisitRead.of(visit, language_of(request))


@router.get("/work-orders/{order_id}/visits/on-site")
def list_visits(
    page: Page,
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[VisitRead]:
    """The crew's visits to the order's site (arrival, departure, stages done), oldest first."""
    visits = service.visits_for_actor(session, order_id, user)
    language = language_of(request)
    return page.apply([VisitRead.of(v, language) for v in visits])


@router.post("/work-orders/{order_id}/visits/{visit_id}/complete")
def complete_visit(
    request: Request,
    order_id: IdPath,
    visit_id: IdPath,
    session: DbSession,
    user: FieldWork,
    body: VisitComplete | None = None,
) -> CompletionRead:
    """Move the order through every stage whose evidence is present; list what is missing
    (each gap with its ``message`` in the request's language)."""
    body = body or VisitComplete()
    done = service.complete(
        session,
        order_id,
        visit_id,
        actor=user,
        device_time=body.device_time,
        lat=body.lat,
        lon=body.lon,
    )
    return CompletionRead(
        complete=done.plan.complete,
        order_stage=done.order.stage,
        moved_through=list(done.plan.moves),
        stopped_at=done.plan.stopped_at,
        missing=gaps_in(service.gaps_as_detail(done.plan.missing), language_of(request)),
        visit=VisitRead.of(done.visit, language_of(request)),
    )


@router.post("/work-orders/{order_id}/visits/{visit_id}/depart")
def depart(
    request: Request,
    order_id: IdPath,
    visit_id: IdPath,
    body: VisitDepart,
    session: DbSession,
    user: FieldWork,
) -> VisitRead:
    """Record the crew leaving the site (closes the visit)."""
    visit = service.depart(
        session,
        order_id,
        visit_id,
        actor=user,
        lat=body.lat,
        lon=body.lon,
        device_time=body.device_time,
    )
    return VisitRead.of(visit, language_of(request))


# The name of the row of all orders (code ``all``) in the reader's language.
ALL_NAMES: Final[dict[Lang, str]] = {"zh-CN": "全部", "en": "All"}


@router.get("/planner/one-visit")
def one_visit_rate(
    page: Page,
    request: Request,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    group_by: Annotated[service.OneVisitGroup, Query()] = "crew",
) -> list[OneVisitRead]:
    """One-visit completion rate of orders energised in the range, overall (code ``all``) and
    per crew or district (``group_by``), each row keyed by its code and name."""
    service.validate_range(date_from, date_to)
    rows = service.one_visit_rate(
        session,
        date_from=date_from,
        date_to=date_to,
        group_by=group_by,
        all_name=ALL_NAMES[language_of(request)],
    )
    return page.apply([OneVisitRead(**asdict(r)) for r in rows])


@router.get("/planner/trend")
def trend(
    page: Page, session: DbSession, user: Planner, date_from: From, date_to: To
) -> list[TrendRead]:
    """First-pass acceptance, one-visit completion and end-to-end time-limit compliance for
    each month of the range (at most 36), over all crews."""
    rows = service.monthly_trend(session, user, date_from=date_from, date_to=date_to)
    return page.apply([TrendRead(**asdict(r)) for r in rows])


@router.get("/planner/trend.csv", response_class=Response, responses=CSV_RESPONSES)
def trend_csv(
    request: Request, session: DbSession, user: Planner, date_from: From, date_to: To
) -> Response:
    """The monthly trend as CSV."""
    rows = service.monthly_trend(session, user, date_from=date_from, date_to=date_to)
    columns = [f.name for f in fields(service.TrendRow)]
    return csv_response(request, rows, columns, filename=f"trend-{date_from}-{date_to}")


@router.get("/planner/one-visit.csv", response_class=Response, responses=CSV_RESPONSES)
def one_visit_csv(
    request: Request,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    group_by: Annotated[service.OneVisitGroup | None, Query()] = None,
) -> Response:
    """Without ``group_by``: energised orders with their visit count and one-visit flag
    (customer masked). With it: the rates of ``/planner/one-visit`` (code ``all`` first)."""
    service.validate_range(date_from, date_to)
    if group_by is not None:
        rates = service.one_visit_rate(
            session,
            date_from=date_from,
            date_to=date_to,
            group_by=group_by,
            all_name=ALL_NAMES[language_of(request)],
        )
        columns = ["code", "name", "energised", "one_visit", "rate"]
        name = f"one-visit-{group_by}-{date_from}-{date_to}"
        return csv_response(request, rates, columns, filename=name)
    rows = service.one_visit_orders(session, date_from=date_from, date_to=date_to)
    columns = [
        "order_id",
        "crew_code",
        "crew_name",
        "district_code",
        "district_name",
        "customer",
        "visits",
        "one_visit",
        "energised_at",
    ]
    return csv_response(request, rows, columns, filename=f"one-visit-{date_from}-{date_to}")

"""HTTP endpoints of call-backs and the review flags of off-system processing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from field_api.callbacks import exports, service
from field_api.callbacks.rules import FlagKind
from field_api.callbacks.schemas import (
    CallBackDueRead,
    CallBackRead,
    CallBackResultCreate,
    FlagRead,
    FlagResolve,
    ScanRead,
)
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.calendar import calendar_for
from field_api.common.csvfiles import csv_response
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.language import language_of
from field_api.paging import Page
from field_api.types import CSV_RESPONSES, DateQuery, IdPath, IdQuery, OffsetQuery

router = APIRouter(tags=["call-backs"])

Service = Annotated[Principal, Depends(require_roles(Role.service, Role.admin))]
Reader = Annotated[Principal, Depends(require_roles(Role.service, Role.admin, Role.planner))]


@router.get("/callbacks/due")
def list_due_callbacks(
    page: Page,
    session: DbSession,
    user: Reader,
    settings: AppSettings,
    as_of: DateQuery = None,
    district_id: IdQuery = None,
) -> list[CallBackDueRead]:
    """Call-backs not made yet, soonest due first (phones masked for planners)."""
    items = service.due_callbacks(
        session,
        user,
        as_of=as_of or clock.china_today(),
        calendar=calendar_for(settings),
        district_id=district_id,
    )
    masked = service.phones_masked_for(user)
    return page.apply([CallBackDueRead.of(i, masked=masked) for i in items])


@router.get("/work-orders/{order_id}/callback")
def get_callback(order_id: IdPath, session: DbSession, user: CurrentUser) -> CallBackRead:
    """The order's call-back and its result."""
    return CallBackRead.of(service.callback_for_actor(session, order_id, user))


@router.post("/work-orders/{order_id}/callback/result")
def record_callback_result(
    order_id: IdPath, body: CallBackResultCreate, session: DbSession, user: Service
) -> CallBackRead:
    """Record the call-back: satisfaction and irregularities; the order becomes called_back."""
    callback = service.record_result_for_actor(
        session,
        order_id,
        satisfaction=body.satisfaction,
        irregularities=body.irregularities,
        notes=body.notes,
        actor=user,
        complaint=body.complaint,
    )
    return CallBackRead.of(callback)


@router.get("/review-flags")
def list_review_flags(
    page: Page,
    request: Request,
    session: DbSession,
    user: Reader,
    district_id: IdQuery = None,
    kind: FlagKind | None = None,
    include_resolved: bool = False,
) -> list[FlagRead]:
    """Orders flagged for possible off-system processing, with the reasons (``message`` in the
    request's language)."""
    rows = service.flags_page(
        session, user, page, district_id=district_id, kind=kind, include_resolved=include_resolved
    )
    return [FlagRead.of(flag, order, language_of(request)) for flag, order in rows]


@router.get("/review-flags.csv", response_class=Response, responses=CSV_RESPONSES)
def review_flags_csv(
    request: Request,
    session: DbSession,
    user: Reader,
    district_id: IdQuery = None,
    kind: FlagKind | None = None,
    include_resolved: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
    offset: OffsetQuery = 0,
) -> Response:
    """The review flags of ``/review-flags`` as CSV, newest first: each order's crew and
    district by code and name; the reasons (``message``) and the stage in the request's
    language."""
    language = language_of(request)
    lines = exports.review_flag_rows(
        session,
        user,
        language,
        district_id=district_id,
        kind=kind,
        include_resolved=include_resolved,
        limit=limit,
        offset=offset,
    )
    name = f"review-flags-{clock.china_today()}"
    return csv_response(request, lines, exports.FLAG_COLUMNS, filename=name)


@router.post("/review-flags/{flag_id}/resolve")
def resolve_review_flag(
    request: Request, flag_id: IdPath, body: FlagResolve, session: DbSession, user: Service
) -> FlagRead:
    """Close a flag after review."""
    flag, order = service.resolve_flag_of_order(
        session, flag_id, resolution=body.resolution, actor=user
    )
    return FlagRead.of(flag, order, language_of(request))


@router.post("/review-flags/scan")
def scan_review_flags(session: DbSession, _: Service, settings: AppSettings) -> ScanRead:
    """Run the detectors over every installed-or-later order."""
    return ScanRead(
        flags_raised=service.scan_all(session, calendar=calendar_for(settings))
    )

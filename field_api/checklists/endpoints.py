"""HTTP endpoints of completion checks and the planners' acceptance statistics."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from field_api.checklists import service
from field_api.checklists.schemas import (
    ChecklistSubmit,
    FirstPassRead,
    ParetoRead,
    SubmissionRead,
)
from field_api.common.actors import Principal, Role
from field_api.common.csvfiles import csv_response
from field_api.deps import CurrentUser, DbSession, require_roles
from field_api.language import language_of
from field_api.paging import Page
from field_api.types import CSV_RESPONSES, IdPath, IsoDate

router = APIRouter(tags=["checklists"])

FieldWork = Annotated[Principal, Depends(require_roles(Role.crew, Role.admin))]
Planner = Annotated[Principal, Depends(require_roles(Role.planner, Role.admin))]
Phase = Literal["before_energising", "supply_on"]
From = Annotated[IsoDate, Query(alias="from", description="First day (China time), inclusive.")]
To = Annotated[IsoDate, Query(alias="to", description="Last day (China time), inclusive.")]
GroupBy = Annotated[Literal["crew", "district", "kit", "card_version"], Query()]


@router.post("/work-orders/{order_id}/checklists/{phase}", status_code=status.HTTP_201_CREATED)
def submit_checklist(
    request: Request,
    order_id: IdPath,
    phase: Phase,
    body: ChecklistSubmit,
    session: DbSession,
    user: FieldWork,
) -> SubmissionRead:
    """Submit one phase of the order's card; every item is judged and the result stored."""
    row = service.submit(
        session,
        order_id,
        phase=phase,
        values=body.values,
        actor=user,
        device_time=body.device_time,
    )
    items = service.items_of(session, [row.id])[row.id]
    language = language_of(request)
    labels = service.item_labels(row.card_code, row.card_version, language)
    return SubmissionRead.of(row, items, language, labels)


@router.get("/work-orders/{order_id}/checklists")
def list_checklists(
    page: Page,
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[SubmissionRead]:
    """The order's completion-check attempts with every item's verdict (failures with their
    ``message`` in the request's language), oldest first."""
    rows, items = service.attempts_for_actor(session, order_id, user)
    language = language_of(request)
    return page.apply([
        SubmissionRead.of(
            r, items[r.id], language, service.item_labels(r.card_code, r.card_version, language)
        )
        for r in rows
    ])


@router.get("/planner/first-pass")
def first_pass_rate(
    page: Page,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    group_by: GroupBy = "crew",
    phase: Phase = "before_energising",
) -> list[FirstPassRead]:
    """First-pass acceptance rate per crew, district, kit or card version."""
    rows = service.first_pass(
        session, date_from=date_from, date_to=date_to, group_by=group_by, phase=phase
    )
    return page.apply([FirstPassRead(**asdict(r)) for r in rows])


@router.get("/planner/first-pass.csv", response_class=Response, responses=CSV_RESPONSES)
def first_pass_rate_csv(
    request: Request,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    group_by: GroupBy = "crew",
    phase: Phase = "before_energising",
) -> Response:
    """The first-pass acceptance rate as CSV."""
    rows = service.first_pass(
        session, date_from=date_from, date_to=date_to, group_by=group_by, phase=phase
    )
    columns = ["code", "name", "checked", "passed_first", "rate"]
    name = f"first-pass-{group_by}-{date_from}-{date_to}"
    return csv_response(request, rows, columns, filename=name)


@router.get("/planner/failing-items")
def failing_items(
    page: Page,
    request: Request,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    phase: Phase | None = None,
) -> list[ParetoRead]:
    """Pareto of failing check items (most frequent first, with cumulative share), each item
    named in the request's language."""
    rows = service.failing_items(
        session,
        date_from=date_from,
        date_to=date_to,
        phase=phase,
        language=language_of(request),
    )
    return page.apply([ParetoRead(**asdict(r)) for r in rows])


@router.get(
    "/planner/failing-items.csv", response_class=Response, responses=CSV_RESPONSES
)
def failing_items_csv(
    request: Request,
    session: DbSession,
    user: Planner,
    date_from: From,
    date_to: To,
    phase: Phase | None = None,
) -> Response:
    """The Pareto of failing items as CSV."""
    rows = service.failing_items(
        session,
        date_from=date_from,
        date_to=date_to,
        phase=phase,
        language=language_of(request),
    )
    columns = ["item_code", "label", "failures", "share", "cumulative_share"]
    name = f"failing-items-{date_from}-{date_to}"
    return csv_response(request, rows, columns, filename=name)

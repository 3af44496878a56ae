"""HTTP endpoints of work orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from field_api.common.actors import Principal, Role
from field_api.deps import CurrentUser, DbSession, require_roles
from field_api.paging import Page
from field_api.types import IdPath, IdQuery
from field_api.work_orders import service
from field_api.work_orders.rules import Stage
from field_api.work_orders.schemas import (
    AssignmentUpdate,
    TransitionCreate,
    TransitionRead,
    WorkOrderCreate,
    WorkOrderRead,
)

router = APIRouter(prefix="/work-orders", tags=["work orders"])

Intake = Annotated[Principal, Depends(require_roles(Role.service, Role.admin))]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_work_order(body: WorkOrderCreate, session: DbSession, user: Intake) -> WorkOrderRead:
    """Accept a low-voltage connection application as a new work order."""
    order = service.create(session, body, actor=user)
    return WorkOrderRead.of(order, masked=False)


@router.get("")
def list_work_orders(
    page: Page,
    session: DbSession,
    user: CurrentUser,
    stage: Stage | None = None,
    crew_id: IdQuery = None,
    district_id: IdQuery = None,
) -> list[WorkOrderRead]:
    """List the work orders the caller may see (personal data masked), one page."""
    orders = service.page_for_actor(
        session, user, page, stage=stage, crew_id=crew_id, district_id=district_id
    )
    return [WorkOrderRead.of(o, masked=True) for o in orders]


@router.get("/{order_id}")
def get_work_order(order_id: IdPath, session: DbSession, user: CurrentUser) -> WorkOrderRead:
    """Show one work order with the stages it may move to next."""
    order, masked = service.read_for_actor(session, order_id, user)
    return WorkOrderRead.of(order, masked=masked)


@router.put("/{order_id}/assignment")
def assign_work_order(
    order_id: IdPath, body: AssignmentUpdate, session: DbSession, user: Intake
) -> WorkOrderRead:
    """Assign the order to a crew."""
    order = service.assign(session, order_id, crew_code=body.crew_code, actor=user)
    return WorkOrderRead.of(order, masked=False)


@router.post("/{order_id}/transitions", status_code=status.HTTP_201_CREATED)
def transition_work_order(
    order_id: IdPath, body: TransitionCreate, session: DbSession, user: CurrentUser
) -> TransitionRead:
    """Move the order to another stage (409 naming the allowed stages when illegal)."""
    row = service.transition_for_actor(
        session,
        order_id,
        body.to,
        actor=user,
        reason=body.reason,
        expected_on=body.expected_on,
        device_time=body.device_time,
        device_lat=body.device_lat,
        device_lon=body.device_lon,
        data=body.data,
    )
    return TransitionRead.model_validate(row)


@router.get("/{order_id}/transitions")
def list_transitions(
    order_id: IdPath, session: DbSession, user: CurrentUser, page: Page
) -> list[TransitionRead]:
    """The order's recorded stage changes, oldest first."""
    rows = service.transitions_for_actor(session, order_id, user)
    return page.apply([TransitionRead.model_validate(t) for t in rows])

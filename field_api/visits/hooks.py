"""Reactions of the visits slice to other slices' events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.visits.models import Visit, VisitOutcome
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder


def record_stage_on_open_visit(session: Session, order: WorkOrder, row: StageTransition) -> None:
    """Note every stage the order reaches while a crew is on site (whoever moved it)."""
    visit = session.execute(
        select(Visit)
        .where(Visit.order_id == order.id, Visit.outcome == VisitOutcome.open)
        .order_by(Visit.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if visit is not None:
        # A new list, so that SQLAlchemy sees the JSON column change.
        visit.stages_done = [*visit.stages_done, row.to_stage.value]


def install() -> None:
    """Register the listeners (called by create_app and the CLI)."""
    orders.add_transition_listener(record_stage_on_open_visit)

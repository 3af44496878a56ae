"""Registers the network slice's reaction to stage changes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from field_api.network import service
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import Stage
from field_api.work_orders.service import add_transition_listener


def on_transition(session: Session, order: WorkOrder, row: StageTransition) -> None:
    """Energising puts the order's load on its transformer; cancelling gives it back."""
    if row.to_stage == Stage.energised:
        service.mark_energised(session, order.id, actor=None)
    elif row.to_stage == Stage.cancelled:
        service.release(session, order.id, actor=None)


def install() -> None:
    """Listen to every stage change (idempotent)."""
    add_transition_listener(on_transition)

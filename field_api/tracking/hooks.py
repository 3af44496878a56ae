"""Registers the tracking slice's reactions to stage changes and booked visits."""

from __future__ import annotations

from field_api.deadlines.service import add_deadline_listener, add_visit_listener
from field_api.tracking.service import on_deadline_event, on_stage_change, on_visit_planned
from field_api.work_orders.service import add_transition_listener


def install() -> None:
    """Queue webhooks and customer SMS on every stage change and visit, and webhooks on
    pauses, cancelled visits and moved due dates (idempotent)."""
    add_transition_listener(on_stage_change)
    add_visit_listener(on_visit_planned)
    add_deadline_listener(on_deadline_event)

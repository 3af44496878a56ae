"""Registers the deadlines slice's reaction to stage changes."""

from __future__ import annotations

from field_api.deadlines.service import transition_listener
from field_api.work_orders.service import add_transition_listener


def install() -> None:
    """Recompute an order's deadlines on every stage change (idempotent)."""
    add_transition_listener(transition_listener)

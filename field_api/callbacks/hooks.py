"""Registers the call-back slice's reaction to stage changes."""

from __future__ import annotations

from field_api.callbacks.service import guard_closing, on_stage_change
from field_api.work_orders.service import add_transition_guard, add_transition_listener


def install() -> None:
    """Schedule call-backs at energisation, run the detectors, and keep an order with an open
    call-back follow-up from closing (idempotent)."""
    add_transition_listener(on_stage_change)
    add_transition_guard(guard_closing)

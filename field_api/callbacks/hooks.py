"""Registers the call-back slice's reaction to stage changes."""

from __future__ import annotations

from field_api.callbacks.service import on_stage_change
from field_api.work_orders.service import add_transition_listener


def install() -> None:
    """Schedule call-backs at energisation and run the detectors (idempotent)."""
    add_transition_listener(on_stage_change)

"""Crew visits to a work order's site: arrival and departure with GPS, and what got done."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base
from field_api.work_orders.rules import Stage


def _enum(cls: type[Any]) -> Enum:
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class VisitOutcome(enum.StrEnum):
    open = "open"  # the crew is on site
    completed = "completed"  # the order reached energised during this visit
    left_incomplete = "left_incomplete"  # the crew left with something missing


class Visit(Audited, Base):
    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    crew_id: Mapped[int] = mapped_column(ForeignKey("crews.id"), index=True)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    start_stage: Mapped[Stage] = mapped_column(_enum(Stage))
    arrived_at: Mapped[datetime] = mapped_column(default=clock.now)
    arrival_device_time: Mapped[datetime | None]
    arrival_lat: Mapped[float]
    arrival_lon: Mapped[float]
    arrival_accuracy_m: Mapped[float | None]
    arrival_distance_m: Mapped[float]
    departed_at: Mapped[datetime | None]
    departure_device_time: Mapped[datetime | None]
    departure_lat: Mapped[float | None]
    departure_lon: Mapped[float | None]
    outcome: Mapped[VisitOutcome] = mapped_column(_enum(VisitOutcome), default=VisitOutcome.open)
    completed_at: Mapped[datetime | None]
    # Stages the order moved through while this visit was open, in order.
    stages_done: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The gaps the last completion attempt stopped at ([] once complete).
    missing: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(String(2000))

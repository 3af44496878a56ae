"""Stored deadlines of orders, clock pauses and planned visits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock as server_clock
from field_api.db import Audited, Base


class OrderDeadline(Base):
    """One clock of one order as last computed (recomputed on every change of its inputs).

    ``status`` is the standing on ``computed_at``; views classify again on the day they show.
    """

    __tablename__ = "order_deadlines"
    __table_args__ = (UniqueConstraint("order_id", "clock"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    clock: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    governing: Mapped[bool] = mapped_column(default=False)
    started_on: Mapped[date]
    limit_days: Mapped[int | None]
    due_on: Mapped[date | None] = mapped_column(index=True)
    provisional: Mapped[bool] = mapped_column(default=False, index=True)
    missing_years: Mapped[list[int]] = mapped_column(JSON, default=list)
    capped_by_end_to_end: Mapped[bool] = mapped_column(default=False)
    finished_on: Mapped[date | None]
    status: Mapped[str | None] = mapped_column(String(16))
    paused: Mapped[bool] = mapped_column(default=False)
    paused_working_days: Mapped[int] = mapped_column(default=0)
    computed_at: Mapped[datetime] = mapped_column(default=server_clock.now)


class ClockPause(Audited, Base):
    """A customer-caused wait that stops the order's clocks."""

    __tablename__ = "clock_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=server_clock.now)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PlannedVisit(Audited, Base):
    """A visit window a crew booked with the customer."""

    __tablename__ = "planned_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    booked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    booked_at: Mapped[datetime] = mapped_column(default=server_clock.now)
    cancelled_at: Mapped[datetime | None]

"""Work orders and their recorded stage transitions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base
from field_api.work_orders.rules import Area, Category, Channel, Stage


def _enum(cls: type[Any]) -> Enum:
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class WorkOrder(Audited, Base):
    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_phone: Mapped[str] = mapped_column(String(32))
    customer_id_number: Mapped[str] = mapped_column(String(32))
    category: Mapped[Category] = mapped_column(_enum(Category))
    capacity_kw: Mapped[float]
    phases: Mapped[int]
    address: Mapped[str] = mapped_column(String(500))
    lon: Mapped[float]
    lat: Mapped[float]
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    area: Mapped[Area] = mapped_column(_enum(Area))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    applied_on: Mapped[date]
    accepted_at: Mapped[datetime] = mapped_column(default=clock.now)
    stage: Mapped[Stage] = mapped_column(_enum(Stage), index=True, default=Stage.accepted)
    parked_from: Mapped[Stage | None] = mapped_column(_enum(Stage))
    whitelist_reason: Mapped[str | None] = mapped_column(Text)
    whitelist_expected_on: Mapped[date | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    stage_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class StageTransition(Audited, Base):
    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    from_stage: Mapped[Stage] = mapped_column(_enum(Stage))
    to_stage: Mapped[Stage] = mapped_column(_enum(Stage))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=clock.now)
    device_time: Mapped[datetime | None]
    device_lat: Mapped[float | None]
    device_lon: Mapped[float | None]
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

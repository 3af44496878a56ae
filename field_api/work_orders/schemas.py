"""Request and response bodies of work orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from field_api.privacy import mask_id_number, mask_name, mask_phone
from field_api.types import IsoAwareDatetime, IsoDate, JsonObject, Text
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Area, Category, Channel, Stage, allowed_targets


class WorkOrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_name: Text = Field(min_length=1, max_length=200)
    customer_phone: Text = Field(pattern=r"^\+?[0-9]{6,20}$")
    customer_id_number: Text = Field(pattern=r"^[0-9A-Za-z]{6,32}$")
    category: Category
    capacity_kw: float = Field(gt=0, le=10_000)
    phases: Literal[1, 3]
    address: Text = Field(min_length=1, max_length=500)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    district_code: Text = Field(min_length=1, max_length=32)
    crew_code: Text | None = Field(default=None, max_length=32)
    area: Area = Area.urban
    channel: Channel = Channel.app
    applied_on: IsoDate


class AssignmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crew_code: Text = Field(min_length=1, max_length=32)


class TransitionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Stage
    reason: Text | None = Field(default=None, max_length=2000)
    expected_on: IsoDate | None = Field(
        default=None, description="Expected end of grid reinforcement (white list only)."
    )
    device_time: IsoAwareDatetime | None = None
    device_lat: float | None = Field(default=None, ge=-90, le=90)
    device_lon: float | None = Field(default=None, ge=-180, le=180)
    data: JsonObject | None = None


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    from_stage: Stage
    to_stage: Stage
    actor_id: int | None
    at: datetime
    device_time: datetime | None
    device_lat: float | None
    device_lon: float | None
    reason: str | None


class WorkOrderRead(BaseModel):
    id: int
    customer_name: str
    customer_phone: str
    customer_id_number: str
    category: Category
    capacity_kw: float
    phases: int
    address: str
    lon: float
    lat: float
    district_id: int
    crew_id: int | None
    area: Area
    channel: Channel
    applied_on: date
    accepted_at: datetime
    stage: Stage
    parked_from: Stage | None
    whitelist_reason: str | None
    whitelist_expected_on: date | None
    cancel_reason: str | None
    stage_changed_at: datetime
    allowed_next: list[Stage]

    @classmethod
    def of(cls, order: WorkOrder, *, masked: bool) -> WorkOrderRead:
        return cls(
            id=order.id,
            customer_name=mask_name(order.customer_name) if masked else order.customer_name,
            customer_phone=mask_phone(order.customer_phone) if masked else order.customer_phone,
            customer_id_number=(
                mask_id_number(order.customer_id_number) if masked else order.customer_id_number
            ),
            category=order.category,
            capacity_kw=order.capacity_kw,
            phases=order.phases,
            address=order.address,
            lon=order.lon,
            lat=order.lat,
            district_id=order.district_id,
            crew_id=order.crew_id,
            area=order.area,
            channel=order.channel,
            applied_on=order.applied_on,
            accepted_at=order.accepted_at,
            stage=order.stage,
            parked_from=order.parked_from,
            whitelist_reason=order.whitelist_reason,
            whitelist_expected_on=order.whitelist_expected_on,
            cancel_reason=order.cancel_reason,
            stage_changed_at=order.stage_changed_at,
            allowed_next=allowed_targets(order.stage, parked_from=order.parked_from),
        )

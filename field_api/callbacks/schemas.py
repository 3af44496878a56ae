"""Request and response bodies of call-backs and review flags."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from field_api import messages
from field_api.callbacks.models import CallBack, ReviewFlag
from field_api.callbacks.rules import FlagKind, Irregularity
from field_api.callbacks.service import CallBackDue
from field_api.deadlines.rules import ClockStatus
from field_api.privacy import mask_name, mask_phone
from field_api.types import Text
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage


class CallBackResultCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    satisfaction: int = Field(
        ge=1, le=5, description="1 (very dissatisfied) to 5 (very satisfied)."
    )
    irregularities: list[Irregularity] = Field(default_factory=list, max_length=10)
    complaint: bool = Field(
        default=False,
        description="The customer complained: opens a follow-up for the service role, like a "
        "satisfaction of 2 or less; the order cannot close until it is resolved.",
    )
    notes: Text | None = Field(default=None, max_length=2000)


class CallBackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    energised_on: date
    due_on: date
    provisional: bool
    missing_years: list[int]
    done_at: datetime | None
    satisfaction: int | None
    complaint: bool
    irregularities: list[str]
    notes: str | None

    @classmethod
    def of(cls, callback: CallBack) -> CallBackRead:
        return cls.model_validate(callback)


class CallBackDueRead(BaseModel):
    """A call-back to make; the customer's phone is shown to the service role only."""

    callback: CallBackRead
    order_id: int
    district_id: int
    customer_name: str
    customer_phone: str
    status: ClockStatus

    @classmethod
    def of(cls, item: CallBackDue, *, masked: bool) -> CallBackDueRead:
        order = item.order
        return cls(
            callback=CallBackRead.of(item.callback),
            order_id=order.id,
            district_id=order.district_id,
            customer_name=mask_name(order.customer_name) if masked else order.customer_name,
            customer_phone=mask_phone(order.customer_phone) if masked else order.customer_phone,
            status=item.status,
        )


class FlagRead(BaseModel):
    id: int
    order_id: int
    district_id: int
    crew_id: int | None
    stage: Stage
    kind: FlagKind
    params: dict[str, Any] = Field(
        description="The reasons in no language: {messages: [{code, params}]} "
        "(field_api.messages)."
    )
    message: str = Field(description="The reasons in the request's language.")
    reason: str = Field(description="The reasons in English.")
    detected_at: datetime
    resolved_at: datetime | None
    resolution: str | None

    @classmethod
    def of(
        cls, flag: ReviewFlag, order: WorkOrder, language: str = messages.DEFAULT_LANGUAGE
    ) -> FlagRead:
        params = dict(flag.params) if flag.params is not None else {}
        parts = params.get("messages")
        message = (
            messages.render_all(parts, language) if isinstance(parts, list) else flag.reason
        )
        return cls(
            id=flag.id,
            order_id=order.id,
            district_id=order.district_id,
            crew_id=order.crew_id,
            stage=order.stage,
            kind=FlagKind(flag.kind),
            params=params,
            message=message,
            reason=flag.reason,
            detected_at=flag.detected_at,
            resolved_at=flag.resolved_at,
            resolution=flag.resolution,
        )


class FlagResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Text = Field(min_length=1, max_length=2000)


class ScanRead(BaseModel):
    flags_raised: int

"""Request and response bodies of tracking and webhooks."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from field_api.tracking.models import WebhookDelivery, WebhookSubscription
from field_api.tracking.rules import EventType
from field_api.tracking.service import ProgressView
from field_api.types import Text
from field_api.work_orders.rules import Stage


class StepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stage: Stage
    label: str
    done: bool
    current: bool
    at: datetime | None


class VisitWindowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    window_start: datetime
    window_end: datetime


class DeadlineRead(BaseModel):
    """The promised date; ``provisional`` when a year's holidays are not yet published."""

    model_config = ConfigDict(from_attributes=True)

    due_on: date
    provisional: bool
    missing_years: list[int]
    status: str | None


class ProgressRead(BaseModel):
    """An order's progress as the customer sees it (personal data masked)."""

    model_config = ConfigDict(from_attributes=True)

    order_id: int
    customer_name: str
    customer_phone: str
    district: str
    category: str
    stage: Stage
    stage_label: str
    steps: list[StepRead]
    planned_visit: VisitWindowRead | None
    deadline: DeadlineRead | None
    whitelist_expected_on: date | None
    updated_at: datetime

    @classmethod
    def of(cls, view: ProgressView) -> ProgressRead:
        return cls.model_validate(view)


class TrackingLinkRead(BaseModel):
    order_id: int
    token: str
    path: str
    url: str


class TrackingRevoked(BaseModel):
    order_id: int
    revoked: bool = Field(description="Whether a link existed (it no longer works).")


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    url: Text = Field(min_length=8, max_length=500)
    events: list[EventType] = Field(min_length=1)
    include_tracking_path: bool = Field(
        default=False,
        description="Send the customer's tracking page path (a bearer secret) in each payload's "
        "order.tracking_path; without it the field is left out.",
    )


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    include_tracking_path: bool
    created_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="After a secret rotation: until when the previous secret still signs "
        "every request (a second v1 in X-Fieldops-Signature); null outside an overlap.",
    )

    @classmethod
    def of(cls, sub: WebhookSubscription) -> SubscriptionRead:
        return cls.model_validate(sub)


class SubscriptionCreated(SubscriptionRead):
    """Returned once at creation: the only time the signing secret is shown."""

    secret: str

    @classmethod
    def created(cls, sub: WebhookSubscription) -> SubscriptionCreated:
        return cls.model_validate(sub)


class SecretRotated(SubscriptionRead):
    """Returned once by a rotation: the only time the new signing secret is shown."""

    secret: str

    @classmethod
    def rotated(cls, sub: WebhookSubscription) -> SecretRotated:
        return cls.model_validate(sub)


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subscription_id: int
    event_id: str
    event_type: str
    order_id: int | None
    sequence: int | None = Field(
        default=None, description="The event's place among its order's events (1, 2, 3...)."
    )
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    resent_at: datetime | None = Field(
        default=None, description="When an admin last re-sent it from the dead letters."
    )

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryRead:
        return cls.model_validate(row)


class WebhookOrder(BaseModel):
    """The order an event is about: no personal data."""

    model_config = ConfigDict(extra="allow")

    id: int
    stage: str
    category: str
    district: str | None
    tracking_path: str | None = Field(
        default=None,
        description="The customer's tracking page path: only for subscriptions with "
        "include_tracking_path (a bearer secret); absent otherwise.",
    )


class WebhookEvent(BaseModel):
    """The JSON body of every webhook request (UTF-8, keys sorted, no spaces: the exact bytes
    signed). Fields after ``order`` depend on the event type."""

    model_config = ConfigDict(extra="allow")

    event: EventType
    event_id: str = Field(description="The same on every retry: deduplicate on it.")
    occurred_at: datetime
    sequence: int | None = Field(
        description="The event's place among its order's events (1, 2, 3...), the same on "
        "retries. An order's events reach a subscriber in this order; gaps mean events of "
        "types you do not subscribe to, or a dead letter (re-sent later by an admin, so a "
        "smaller number can come after a larger one). Null for an event without an order."
    )
    order: WebhookOrder | None = None
    from_stage: str | None = Field(default=None, description="stage_changed")
    to_stage: str | None = Field(default=None, description="stage_changed")
    at: datetime | None = Field(default=None, description="stage_changed")
    deadline: dict[str, object] | None = Field(
        default=None, description="stage_changed: due_on, provisional, missing_years"
    )
    visit: dict[str, object] | None = Field(
        default=None,
        description="visit_planned, appointment_changed, appointment_cancelled: id, "
        "window_start, window_end (cancelled_at when cancelled)",
    )
    previous_visit: dict[str, object] | None = Field(
        default=None, description="appointment_changed: the window it replaces"
    )
    pause: dict[str, object] | None = Field(
        default=None, description="pause_started, pause_ended: id, reason, started_at, ended_at"
    )
    clock: str | None = Field(default=None, description="due_date_changed: the governing clock")
    old_due_on: date | None = Field(default=None, description="due_date_changed")
    new_due_on: date | None = Field(default=None, description="due_date_changed")
    provisional: bool | None = Field(default=None, description="due_date_changed")

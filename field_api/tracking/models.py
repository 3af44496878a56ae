"""Tracking tokens, webhook subscribers and the persisted webhook outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class TrackingToken(Base):
    """The unguessable token of an order's public progress page."""

    __tablename__ = "tracking_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookSubscription(Audited, Base):
    """A system told about stage changes and planned visits."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    # Kept readable: every request is signed with it (HMAC needs the secret itself).
    secret: Mapped[str] = mapped_column(String(128))
    # After a rotation the previous secret still signs (a second v1) until it expires; it is
    # then wiped (None), never kept longer than the overlap.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    events: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    # The customer's tracking path is a bearer secret: sent only to subscribers that ask.
    include_tracking_path: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookDelivery(Base):
    """One event for one subscriber, written in the transaction that caused it (outbox)."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_outbox_lane", "subscription_id", "status", "order_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    # The event's place among its order's events (1, 2, 3...; None without an order): an
    # order's later event waits while an earlier one is pending for the same subscriber.
    sequence: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True, default=clock.now)
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    delivered_at: Mapped[datetime | None]
    resent_at: Mapped[datetime | None]  # when an admin last re-sent it from the dead letters


class WebhookOrderSequence(Base):
    """The last webhook sequence number given to an order's events (one row per order)."""

    __tablename__ = "webhook_order_sequences"

    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(default=0)

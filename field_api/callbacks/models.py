"""Call-backs after energisation and the review flags of off-system processing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class CallBack(Audited, Base):
    """The customer call-back (回访) due after energisation, and its result."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), unique=True)
    energised_on: Mapped[date]
    due_on: Mapped[date] = mapped_column(index=True)
    provisional: Mapped[bool] = mapped_column(default=False)
    missing_years: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    done_at: Mapped[datetime | None] = mapped_column(index=True)
    satisfaction: Mapped[int | None]
    # The customer complained at the call-back (whatever the satisfaction score).
    complaint: Mapped[bool] = mapped_column(default=False, server_default=false())
    irregularities: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ReviewFlag(Audited, Base):
    """An order flagged for review by a detector of off-system processing."""

    __tablename__ = "review_flags"
    __table_args__ = (UniqueConstraint("order_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(Text)  # English (logs, older clients)
    # {"messages": [{"code", "params"}, ...]}: the reasons in no language (field_api.messages);
    # None on rows from before the catalogue (their message is the English reason).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    detected_at: Mapped[datetime] = mapped_column(default=clock.now)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)

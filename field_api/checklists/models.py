"""Submitted completion checks (竣工检验) and their per-item verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class ChecklistSubmission(Audited, Base):
    """One attempt at one phase of a card for an order; attempt 1 is what first-pass counts."""

    __tablename__ = "checklist_submissions"
    __table_args__ = (UniqueConstraint("order_id", "phase", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    phase: Mapped[str] = mapped_column(String(32))  # before_energising | supply_on
    attempt: Mapped[int]
    card_code: Mapped[str] = mapped_column(String(64))
    card_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))  # passed | passed_with_remarks | failed
    passed: Mapped[bool] = mapped_column(Boolean, index=True)
    submitted_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    device_time: Mapped[datetime | None]
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Who, where and with what: frozen at submission so that statistics do not move when an
    # order is later reassigned.
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"), index=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    kit_code: Mapped[str | None] = mapped_column(String(32))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)


class ChecklistItemResult(Audited, Base):
    """The verdict on one item of a submission."""

    __tablename__ = "checklist_item_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("checklist_submissions.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(64), index=True)
    item_type: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    critical: Mapped[bool]
    passed: Mapped[bool]
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)  # English (logs, older clients)
    # The reason as a message of field_api.messages ({"code", "params"}); None when the item
    # passed or on rows from before the catalogue (their message is the English reason).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

"""Connection contracts of work orders and the one-time codes that consent to signing them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class ContractStatus(enum.StrEnum):
    draft = "draft"
    signed = "signed"


class Contract(Audited, Base):
    """One order's contract: the data snapshot it is rendered from, and once signed, the proof."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), unique=True)
    contract_no: Mapped[str] = mapped_column(String(64), unique=True)
    revision: Mapped[int] = mapped_column(default=1)
    status: Mapped[ContractStatus] = mapped_column(
        Enum(ContractStatus, native_enum=False, length=16, validate_strings=True),
        default=ContractStatus.draft,
    )
    # The ContractData the document is rendered from (JSON), frozen at generation: later
    # edits of the order cannot change what the customer is shown and signs.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    draft_sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(default=clock.now)
    generated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    file_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    file_size: Mapped[int | None]
    signature_image_sha256: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    envelope: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ContractOtp(Audited, Base):
    """A one-time code sent to the customer's phone; only its keyed hash is stored."""

    __tablename__ = "contract_otps"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    salt: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    sent_to: Mapped[str] = mapped_column(String(32))  # masked phone
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    max_attempts: Mapped[int]
    attempts: Mapped[int] = mapped_column(default=0)
    accepted_at: Mapped[datetime | None]
    superseded: Mapped[bool] = mapped_column(default=False)

"""The SMS outbox: one row per customer message (not audited: the change that caused it is).

``phone_ct`` and ``params_ct`` hold the number and the template parameters (a one-time code, a
tracking link) encrypted with AES-GCM under the SMS key kept outside the database
(:mod:`field_api.sms.crypto`); they are wiped (NULL) once the message is sent (with the
development ``log`` gateway, once it is older than the newest 50 sent) or its job is dead.
``phone_masked`` is what lists and the dead-letter list show.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Base


class SmsOutbox(Base):
    __tablename__ = "sms_outbox"
    __table_args__ = (Index("ix_sms_outbox_state_sent", "state", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(32))
    phone_masked: Mapped[str] = mapped_column(String(32))
    phone_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    params_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    job_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

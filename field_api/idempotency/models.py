"""Stored answers of requests sent with an Idempotency-Key.

A row holds what a replay needs and nothing secret: the keyed hash of the caller's
credentials (``scope``), the client's key, the hash of the request, and the response with its
secret fields removed and its personal fields masked (see :mod:`field_api.idempotency.service`).
While the request runs, ``owner``/``lease_expires_at`` say which process executes it; a retry
after a crash takes the key over once that lease expires or its owner is gone. Rows expire at
``expires_at`` (``idempotency_ttl_hours`` after the answer) and are purged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Base


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    redacted: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime] = mapped_column(index=True)

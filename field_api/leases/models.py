"""One row per claimed piece of background work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from field_api.db import Base


class Lease(Base):
    """``kind`` names the work (``media.analyse``, ``audit.checkpoint``); ``key`` the item."""

    __tablename__ = "leases"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    claims: Mapped[int] = mapped_column(default=1)

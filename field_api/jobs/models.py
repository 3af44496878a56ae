"""One row per piece of background work (not audited: it holds no operational data).

A job is written in the transaction of the change that causes it, so a rollback enqueues
nothing and a commit always does. ``state`` is ``pending`` (waiting for ``run_after``),
``running`` (claimed: the ``jobs.run`` lease of its id says by whom and until when), ``done``
or ``dead`` (gave up after ``max_attempts``; an admin may retry it). ``dedupe_key`` makes a job
exist once while it is unfinished (a periodic job's row is reused for its next run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Base


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "state", "queue", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(32), default="default")
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    run_after: Mapped[datetime] = mapped_column(default=clock.now)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    period_s: Mapped[float | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

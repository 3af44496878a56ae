"""Response bodies of the job endpoints (a job's payload is never shown: it may hold personal
data; its kind, queue and error say what it was)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue: str
    kind: str
    state: str
    attempts: int
    max_attempts: int
    run_after: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    subject: str | None = Field(
        default=None,
        description="What the job was about, personal data masked (an SMS: its kind and the "
        "masked number; never its text).",
    )


class JobPage(BaseModel):
    items: list[JobRead]
    total: int
    limit: int
    offset: int
